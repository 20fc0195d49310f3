#!/usr/bin/env python3
"""A worked example of a reward plugin in Python: `against_wall`.

Reward plugins are processes that read one JSON request per line on stdin and write one JSON
response per line on stdout (see rewards/README.md for the protocol). This one needs nothing
but the standard library.

What it rewards: tall furniture (taller than `min_height`, 1.2 m by default) standing against a
wall. For each tall object on the floor, the gap from its footprint to the nearest wall scores
max(0, 1 - gap / 0.5 m); the value is the mean (1 when the room has no tall floor object).

Use it from a reward config:

    (reward: "plugin", name: "against_wall", weight: 0.2, fallback: 0.0,
     params: (command: ["python3", "against_wall.py"], config: {"min_height": 1.2}))
"""

import json
import math
import sys


def footprint_extent(obj, pose):
    """Half extents of the object's footprint along x and y at its heading."""
    h = math.radians(pose["rotation"])
    half_l, half_w = obj["size"]["length"] / 2, obj["size"]["width"] / 2
    # Heading turns clockwise from +y; length runs along the object's right axis.
    rx = half_l * abs(math.cos(h)) + half_w * abs(math.sin(h))
    ry = half_l * abs(math.sin(h)) + half_w * abs(math.cos(h))
    return rx, ry


def score(request):
    """The response for one request."""
    params = request.get("params") or {}
    min_height = float(params.get("min_height", 1.2))
    room = request["room"]
    length, width = room["size"]["length"], room["size"]["width"]
    objects = {o["id"]: o for o in room["objects"]}
    scores = []
    for pose in request["assessment"]["layout"]["poses"]:
        obj = objects.get(pose["id"])
        if obj is None or not obj["on_floor"] or obj["size"]["height"] <= min_height:
            continue
        x, y, _ = pose["position"]
        rx, ry = footprint_extent(obj, pose)
        gap = min(x - rx, length - x - rx, y - ry, width - y - ry)
        scores.append(max(0.0, 1.0 - abs(gap) / 0.5))
    value = sum(scores) / len(scores) if scores else 1.0
    return {"value": value, "components": {"tall_objects": len(scores)}}


def main():
    for line in sys.stdin:
        request = json.loads(line)
        try:
            response = score(request)
        except (KeyError, TypeError, ValueError) as e:
            response = {"error": f"{type(e).__name__}: {e}"}
        response["id"] = request["id"]
        # One line per answer, flushed: the host waits for it.
        print(json.dumps(response), flush=True)


if __name__ == "__main__":
    main()

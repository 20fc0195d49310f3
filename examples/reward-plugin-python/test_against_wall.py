"""Runs the plugin as the host does: a process, one request line in, one response line out."""

import json
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def request(poses):
    room = {
        "id": "r",
        "size": {"length": 4.0, "width": 3.0, "height": 2.5},
        "objects": [
            {"id": "wardrobe", "category": "wardrobe", "on_floor": True,
             "size": {"length": 1.0, "width": 0.6, "height": 2.0}},
            {"id": "chair", "category": "chair", "on_floor": True,
             "size": {"length": 0.5, "width": 0.5, "height": 0.9}},
        ],
    }
    layout = {"poses": [{"id": i, "position": p, "rotation": r} for i, p, r in poses]}
    return {"id": 1, "reward": "against_wall", "params": {}, "turn": 1, "room": room,
            "response": "", "answer": None, "format_error": None,
            "assessment": {"layout": layout}, "images": []}


def run(req):
    out = subprocess.run([sys.executable, os.path.join(HERE, "against_wall.py")],
                         input=json.dumps(req) + "\n", capture_output=True, text=True, timeout=30)
    return json.loads(out.stdout.splitlines()[0])


class AgainstWallTest(unittest.TestCase):
    def test_flush_wardrobe_scores_one(self):
        r = run(request([("wardrobe", [0.3, 2.0, 1.0], 90.0), ("chair", [2, 1, 0.45], 0.0)]))
        self.assertEqual(r["id"], 1)
        self.assertAlmostEqual(r["value"], 1.0)
        self.assertEqual(r["components"]["tall_objects"], 1)

    def test_gap_of_a_quarter_metre_scores_half(self):
        r = run(request([("wardrobe", [0.55, 2.0, 1.0], 90.0)]))
        self.assertAlmostEqual(r["value"], 0.5)

    def test_malformed_request_is_an_error_not_a_crash(self):
        r = run({"id": 3, "room": {}})
        self.assertEqual(r["id"], 3)
        self.assertIn("KeyError", r["error"])


if __name__ == "__main__":
    unittest.main()

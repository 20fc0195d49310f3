"""Rebuilds the re-saved part of the config corpus in `policy/tests/fixtures/configs/`.

The corpus holds the Qwen2.5-VL configuration files users actually have: the Hub texts
(`hub/<size>/`, copied as published) and the same files after a given transformers release has
loaded and saved them (`transformers-<version>/<size>/`). Releases rewrite these files on save
(legacy and new key names side by side, text fields nested under `text_config`, `dtype` beside
`torch_dtype`), and every checkpoint a user fine-tunes comes out in that shape, so the loader is
tested against each of them.

Run once per transformers release, each in its own throwaway virtual environment (no torch is
needed), from the repository root:

    python -m venv /tmp/tf-4.57 && /tmp/tf-4.57/bin/pip install transformers==4.57.3 pillow
    /tmp/tf-4.57/bin/python policy/scripts/make_config_corpus.py

Files a release cannot re-save without weights or the full vocabulary (`tokenizer_config.json`
needs `tokenizer.json`) are left out of its directory; the test only reads what is there.
"""

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import transformers
from transformers import AutoConfig, AutoImageProcessor, GenerationConfig

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "configs"
HUB_IDS = {
    "3b": "Qwen/Qwen2.5-VL-3B-Instruct",
    "7b": "Qwen/Qwen2.5-VL-7B-Instruct",
    "32b": "Qwen/Qwen2.5-VL-32B-Instruct",
    "72b": "Qwen/Qwen2.5-VL-72B-Instruct",
}


def resave_image_processor(src: str, out: Path) -> None:
    """Saves the image processor settings the way this release writes them."""
    # Older releases pick the "fast" processor only when asked; the slow one needs no torch.
    processor = AutoImageProcessor.from_pretrained(src, use_fast=False)
    processor.save_pretrained(out)


def main() -> int:
    version = transformers.__version__
    for size_dir in sorted((CORPUS / "hub").iterdir()):
        out = CORPUS / f"transformers-{version}" / size_dir.name
        # Save into a scratch directory and copy back only the files we keep, so a release that
        # writes extra files (processor_config.json, chat_template.jinja) leaves them out.
        with tempfile.TemporaryDirectory() as scratch:
            scratch = Path(scratch)
            # Some releases record the directory they loaded from (`_name_or_path`); loading
            # through the Hub id, as a user does, records that id instead of a local path.
            hub_id = HUB_IDS[size_dir.name]
            (scratch / hub_id).parent.mkdir(parents=True)
            shutil.copytree(size_dir, scratch / hub_id)
            saved = scratch / "saved"
            os.chdir(scratch)
            AutoConfig.from_pretrained(hub_id).save_pretrained(saved)
            GenerationConfig.from_pretrained(hub_id).save_pretrained(saved)
            try:
                resave_image_processor(hub_id, saved)
            except Exception as error:  # noqa: BLE001 - report and keep the other files
                print(f"{version} {size_dir.name}: image processor not re-saved: {error}")
            out.mkdir(parents=True, exist_ok=True)
            for name in ("config.json", "generation_config.json", "preprocessor_config.json"):
                if (saved / name).exists():
                    json.loads((saved / name).read_text())
                    shutil.copyfile(saved / name, out / name)
        os.chdir(CORPUS)
        print(f"{version} {size_dir.name}: {sorted(p.name for p in out.iterdir())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

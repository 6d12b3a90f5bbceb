"""sha256 of every file the code generator emits for the four real models (layer by layer and, for the
two MCUNet models, patch-based at their second possible split with a 3x3 grid) and for a zoo MCUNet
(w0.5, 96 px) patch-based after block 3 in 4x4 patches. Run it at two commits and diff the output: a
refactoring that keeps every byte of generated C prints the same lines.

    python benchmarks/c_fingerprint.py > before.txt; (change); python benchmarks/c_fingerprint.py | diff before.txt -
"""
import hashlib
from pathlib import Path

from mcunet_lite import codegen, deploy, patch, schedule

MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "models"
NAMES = ("mcunet-person-det-int8.tflite", "mcunet-vww1-80-int8.tflite", "mlperf-tiny-resnet8-cifar10-int8.tflite",
         "mlperf-tiny-vww-96-int8.tflite")


def fingerprint(label: str, project: codegen.Project) -> None:
    for name, text in sorted(project.files.items()):
        print(f"{label:45s} {name:16s} {hashlib.sha256(text.encode()).hexdigest()[:16]}")


def main() -> None:
    for name in NAMES:
        g = deploy.load_int8(str(MODELS / name))[0]
        fingerprint(name, codegen.emit(g, schedule.plan(g)))
        if name.startswith("mcunet"):
            fingerprint(name + " patch 3x3", codegen.emit(g, patch.plan(g, patch.candidate_splits(g)[1], 3)))
    g = deploy.load_int8("mcunet", 0.5, 96)[0]
    fingerprint("zoo mcunet w0.5 r96 patch 4x4", codegen.emit(g, patch.plan(g, patch.split_after_block(g, 3), 4)))


if __name__ == "__main__":
    main()

"""``python -m service.api.v2_grpc.generate [--into DIR]``: the Python modules of
``grpc_predict_v2.proto`` (messages, their type stubs, the service stub and servicer), generated
by grpcio-tools beside the proto (or into DIR, which the test that they are current uses)."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]  # the directory holding service/
PROTO = Path(__file__).with_name("grpc_predict_v2.proto")
OUTPUTS = ("grpc_predict_v2_pb2.py", "grpc_predict_v2_pb2.pyi", "grpc_predict_v2_pb2_grpc.py")


def generate(into: Path) -> list[Path]:
    """Run protoc on the proto (named by its path from the root, so the generated modules
    import each other as ``service.api.v2_grpc...``); the files, written into ``into``."""
    from grpc_tools import protoc  # a development dependency: only here

    relative = PROTO.relative_to(ROOT)
    with tempfile.TemporaryDirectory() as scratch:
        status = protoc.main(
            [
                "protoc",
                f"-I{ROOT}",
                f"--python_out={scratch}",
                f"--pyi_out={scratch}",
                f"--grpc_python_out={scratch}",
                str(PROTO),
            ]
        )
        if status != 0:
            raise RuntimeError(f"protoc failed on {relative} (status {status})")
        written = []
        for name in OUTPUTS:
            target = into / name
            shutil.copyfile(Path(scratch) / relative.parent / name, target)
            written.append(target)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m service.api.v2_grpc.generate")
    parser.add_argument("--into", type=Path, default=PROTO.parent)
    args = parser.parse_args(argv)
    for path in generate(args.into):
        print(path)


if __name__ == "__main__":
    main()

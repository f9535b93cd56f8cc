"""``python -m deepdream_caffe.zoo models ...``: the zoo's commands without the rest of the CLI."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())

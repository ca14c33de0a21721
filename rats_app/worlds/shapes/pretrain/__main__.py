import sys

from rats_app.worlds.shapes.pretrain.cli import main

sys.exit(main())

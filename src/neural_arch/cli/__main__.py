"""``python -m neural_arch.cli`` runs the ``neural-arch`` command."""

from neural_arch.cli.main import main

main()

"""The ``neural-arch`` command: a registry of subcommands, each in its own module under ``cli/``.

    neural-arch train                                  # the default job: a char model on Tiny Shakespeare
    neural-arch train configs/fashion_mlp.yaml --set optimizer.lr=3e-4 --set train.epochs=2
    neural-arch train -c configs/own_model.yaml        # model.class_path / data.class_path: your own code
    neural-arch train --resume runs/x/checkpoints/last.safetensors
    neural-arch evaluate runs/x --metrics accuracy,f1_macro,loss
    neural-arch generate runs/x --prompt "ROMEO:"      # or a save_pretrained directory
    neural-arch summary configs/fashion_cnn.yaml       # layers, shapes, parameters, memory
    neural-arch info                                   # versions, BLAS, devices, optional extras
    neural-arch serve runs/x                           # an HTTP inference server (the serve extra)

Errors a user can fix (bad config, damaged checkpoint, missing data) are
printed as one clear message, without a traceback. A new command lives in its
own module and is registered here with one ``main.add_command`` line.
"""

from __future__ import annotations

import click

from neural_arch.cli.evaluate import evaluate
from neural_arch.cli.export import export_command
from neural_arch.cli.generate import generate
from neural_arch.cli.info import info
from neural_arch.cli.serve import serve
from neural_arch.cli.summary import summary
from neural_arch.cli.train import run_training, train


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120})
@click.version_option(package_name="neural-arch", prog_name="neural-arch")
def main() -> None:
    """neural-arch: a deep learning framework on NumPy, readable end to end."""


main.add_command(train)
main.add_command(evaluate)
main.add_command(generate)
main.add_command(summary)
main.add_command(info)
main.add_command(export_command)
main.add_command(serve)

__all__ = ["main", "run_training"]

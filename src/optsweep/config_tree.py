"""The resolved config as a tree, printed when a run starts and saved in its dir as
config_tree.txt: what is being trained, readable at a glance (Hydra keeps the plain YAML in
.hydra/config.yaml)."""

from pathlib import Path

from omegaconf import OmegaConf
from rich.console import Console
from rich.syntax import Syntax
from rich.tree import Tree

FIRST = ("data", "model", "optimizer", "scheduler", "trainer", "callbacks", "logger")
TREE_FILE = "config_tree.txt"


def _yaml(section: dict) -> Syntax:
    return Syntax(OmegaConf.to_yaml(OmegaConf.create(section)).rstrip(), "yaml")


def config_tree(config: dict) -> Tree:
    tree = Tree("[bold]config[/bold]", guide_style="dim")
    knobs = {k: v for k, v in config.items() if not isinstance(v, dict)}
    tree.add("[bold]knobs[/bold]").add(_yaml(knobs))
    groups = [k for k in FIRST if isinstance(config.get(k), dict)]
    groups += sorted(k for k, v in config.items() if isinstance(v, dict) and k not in FIRST)
    for key in groups:
        tree.add(f"[bold]{key}[/bold]").add(_yaml(config[key]))
    return tree


def show_config(config: dict, run_dir: Path) -> None:
    console = Console(record=True)
    console.print(config_tree(config))
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / TREE_FILE).write_text(console.export_text())

"""The one table of commands: it feeds the key bindings, the footer, the help screen and the
command palette (no Textual import, so it can be read anywhere)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual.binding import BindingType


@dataclass(frozen=True)
class Command:
    action: str  #: Textual action name (without "action_")
    keys: str  #: comma-separated Textual key names
    label: str  #: short footer label
    help: str  #: one line for the help screen and the palette
    footer: bool = True
    display: str = ""  #: how the keys are written in the help screen

    @property
    def id(self) -> str:
        """The name used in the config's [keys] table, e.g. ``quit``, ``pane1``."""
        return self.action.replace("(", "").replace(")", "")

    @property
    def shown_keys(self) -> str:
        return self.display or self.keys.replace(",", " ")


COMMANDS: tuple[Command, ...] = (
    Command("quit", "q", "quit", "Quit minertop"),
    Command("help", "question_mark,f1", "help", "Show the keys and what they do", display="? F1"),
    Command("refresh", "r", "refresh", "Poll every source now", footer=False),
    Command("pause", "p,space", "pause", "Pause or resume all updates", display="p space"),
    Command("focus_next", "tab", "next pane", "Move to the next pane", footer=False),
    Command("focus_previous", "shift+tab", "prev pane", "Move to the previous pane",
            footer=False, display="shift+tab"),
    Command("pane(1)", "1", "hashrate", "Go to the hashrate pane", footer=False),
    Command("pane(2)", "2", "drift", "Go to the block-time drift pane", footer=False),
    Command("pane(3)", "3", "retarget", "Go to the retarget pane", footer=False),
    Command("pane(4)", "4", "rigs", "Go to the rigs (or recent blocks) pane", footer=False),
    Command("filter", "slash", "filter", "Filter the rigs by name, model, host or status",
            display="/"),
    Command("sort_next", "s,greater_than_sign", "sort", "Sort the rigs by the next column",
            display="s >"),
    Command("sort_prev", "less_than_sign", "sort ←", "Sort the rigs by the previous column",
            footer=False, display="<"),
    Command("sort_invert", "i", "invert", "Reverse the sort order of the rigs", footer=False),
    Command("details", "enter", "details", "Open the selected rig's details (esc: back)",
            footer=False),
    Command("back", "escape", "back", "Back: close a screen, clear the rig filter",
            footer=False, display="esc"),
    Command("zoom", "z", "zoom", "Zoom the focused pane to the full screen, and back"),
    Command("alerts", "a", "alerts", "Show the alerts: active ones and what fired when"),
    Command("curtail", "c", "curtail", "Curtailment: which rigs lose money at the power price "
            "now and at the next tariff period (advice only)", footer=False),
    Command("faster", "plus,equals_sign", "faster", "Poll more often (halve the intervals)",
            footer=False, display="+"),
    Command("slower", "minus", "slower", "Poll less often (double the intervals)",
            footer=False, display="-"),
)


COMMAND_IDS = {c.id: c for c in COMMANDS}


def key_name(text: str) -> str:
    """A key as Textual names it: ``?`` -> ``question_mark``, ``Ctrl+X`` -> ``ctrl+x``."""
    from textual.keys import _character_to_key

    t = text.strip()
    if len(t) == 1 and not t.isalnum():
        return _character_to_key(t)
    return t.lower() if "+" in t or len(t) > 1 else t


_NAMED = {"tab", "enter", "escape", "space", "backspace", "delete", "insert", "home", "end",
          "pageup", "pagedown", "up", "down", "left", "right"}


def parse_keymap(raw: object) -> dict[str, str]:
    """The config's ``[keys]`` table (command = "key, key") as a Textual keymap.

    Raises ValueError naming the first bad entry.
    """
    if not isinstance(raw, dict):
        raise ValueError("[keys] must be a table of command = \"key, key\"")
    out: dict[str, str] = {}
    for cmd, value in raw.items():
        if cmd not in COMMAND_IDS:
            raise ValueError(f"keys.{cmd}: unknown command (known: {', '.join(COMMAND_IDS)})")
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"keys.{cmd}: expected keys like \"q\" or \"ctrl+q, f10\"")
        names = []
        for part in value.split(","):
            name = key_name(part)
            base = name.rsplit("+", 1)[-1]
            ok = (len(base) == 1 or base in _NAMED or (base[0] == "f" and base[1:].isdigit())
                  or "_" in base)
            if not name or not ok:
                raise ValueError(f"keys.{cmd}: {part.strip()!r} is not a key name")
            names.append(name)
        out[cmd] = ",".join(names)
    return out


def bindings_for(commands: Sequence[Command]) -> list[BindingType]:
    """An App's ``BINDINGS`` from its command table (the footer, help and palette use the
    same table)."""
    from textual.binding import Binding

    return [Binding(c.keys, c.action, c.label, show=c.footer, id=c.id,
                    key_display=c.display.split()[0] if c.display else None)
            for c in commands]

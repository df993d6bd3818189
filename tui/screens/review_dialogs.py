"""The review screen's two questions: who signs off (and why), and which earlier review to open."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from services.review import ArchivedReview
from tui import glyphs
from widgets.marked_options import MarkedOptionList


@dataclass(frozen=True, slots=True)
class SignOff:
    reviewer: str
    note: str


class SignOffScreen(ModalScreen[SignOff | None]):
    """Reviewer and note; an empty reviewer is refused here, before anything is written."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="cancel"),
        Binding("ctrl+s", "confirm", "Sign off", id="confirm"),
    ]

    def __init__(self, reviewer: str, summary: str) -> None:
        super().__init__()
        self.reviewer, self.summary = reviewer, summary

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Sign off the review", id="heading")
            yield Static(Text(self.summary), id="what")
            yield Input(self.reviewer, placeholder="reviewer (required)", id="reviewer")
            yield Input(placeholder="note (optional): what was looked at, what follows", id="note")
            yield Static("", id="problem")
            with Horizontal(id="buttons"):
                yield Button("Sign off and archive", variant="primary", id="confirm")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.set_focus(self.query_one("#reviewer", Input))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "reviewer":
            self.set_focus(self.query_one("#note", Input))
        else:
            self.action_confirm()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "confirm":
            self.action_confirm()
        else:
            self.action_cancel()

    def action_confirm(self) -> None:
        reviewer = self.query_one("#reviewer", Input).value.strip()
        if not reviewer:
            self.query_one("#problem", Static).update(
                Text("✗ a sign-off needs the reviewer's name", style="bold red")
            )
            self.set_focus(self.query_one("#reviewer", Input))
            return
        self.dismiss(SignOff(reviewer, self.query_one("#note", Input).value.strip()))

    def action_cancel(self) -> None:
        self.dismiss(None)


class EarlierReviewsScreen(ModalScreen[str | None]):
    """The archived reviews, newest first; the answer is the chosen one's location."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="cancel")]

    def __init__(self, reviews: list[ArchivedReview], archive: str) -> None:
        super().__init__()
        self.reviews, self.archive = reviews, archive

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Earlier reviews", id="heading")
            if self.reviews:
                yield MarkedOptionList(*(self._option(r) for r in self.reviews), id="reviews")
            else:
                yield Static(Text(f"No review is archived under {self.archive} yet."), id="none")
            yield Static(Text("enter opens one read-only, esc goes back", style="dim"))

    @staticmethod
    def _option(r: ArchivedReview) -> Option:
        c = r.summary
        when = (r.signed_at or "not signed").replace("T", " ").removesuffix("Z")[:16]
        text = Text(f"{when}  ", style="bold")
        text.append(f"{(r.reviewer or '-')[:20]:20}  ")
        text.append(glyphs.severity_counts(c, sep="  "))
        return Option(text, id=r.location)

    def on_mount(self) -> None:
        if self.reviews:
            self.set_focus(self.query_one("#reviews", OptionList))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)

"""Prompt templates: pairwise (the judge's comparisons), pointwise scores and generation.

A pairwise template renders the *user message* of one comparison from these variables:

``item_a``, ``item_b`` (required)
    The two items, in the order shown to the judge.
``attribute``
    What is compared, as a phrase that completes "Which summary is ...": ``"more coherent"``.
``noun`` / ``Noun``
    What an item is (``"summary"``), and the same capitalised.
``context`` / ``context_noun``
    Optional shared context (e.g. the article the two summaries summarise) and its name.

The message is then wrapped in the model's chat template by the backend, and
the *answer prefix* is appended after the generation prompt: the judge's reply
is prefilled with "The summary that is more coherent is summary", so the next
token is the answer label (" A" or " B"). Small models that would otherwise
start with "To" or "The" answer with the labels this way (answer-token mass
near 1 instead of about 0.3 for SmolLM2-135M).

Templates are Jinja (``{{ item_a }}``) or Python format strings (``{item_a}``);
a file ending in ``.j2``/``.jinja``/``.jinja2``, or containing ``{{`` or ``{%``, is Jinja.
In a template file, a line ``[assistant]`` separates the user message (above)
from the answer prefix (below); without it the default answer prefix is used.

The pointwise prompt (:data:`POINT_TEMPLATE`, :func:`render_point`: rate one
item on a digit scale, reply prefilled with :data:`POINT_PREFIX`) and the
generation prompt (:data:`GENERATE_TEMPLATE`, :func:`render_generate`: the
item is the reply) are fixed format strings, used by ``pycomp train``
(objectives ``rail`` and ``rank``).
"""
from __future__ import annotations

import hashlib
import os
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

REQUIRED = ("item_a", "item_b")
VARIABLES = ("item_a", "item_b", "attribute", "noun", "Noun", "context", "context_noun", "label_a", "label_b")

DEFAULT_TEMPLATE = (
    "{% if context %}{{ context_noun }}:\n{{ context }}\n\n{% endif %}"
    "{{ Noun }} {{ label_a }}:\n{{ item_a }}\n\n"
    "{{ Noun }} {{ label_b }}:\n{{ item_b }}\n\n"
    "Which {{ noun }} is {{ attribute }}, {{ noun }} {{ label_a }} or {{ noun }} {{ label_b }}?"
)
DEFAULT_ANSWER_PREFIX = "The {{ noun }} that is {{ attribute }} is {{ noun }}"
ASSISTANT_MARKER = "[assistant]"


class TemplateError(ValueError):
    """A template that cannot be used: missing or unknown placeholders, bad syntax."""


def _jinja_env():
    import jinja2

    return jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


def _placeholders(text: str, kind: str) -> set:
    if kind == "jinja":
        import jinja2
        from jinja2 import meta

        try:
            return set(meta.find_undeclared_variables(_jinja_env().parse(text)))
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"template has a Jinja syntax error on line {exc.lineno}: {exc.message}") from exc
    names = set()
    try:
        for _, name, _, _ in string.Formatter().parse(text):
            if name is None:
                continue
            if name == "" or name.isdigit():
                raise TemplateError("format-string template uses a positional field {}; name it, e.g. {item_a}")
            names.add(name.split(".")[0].split("[")[0])
    except ValueError as exc:
        raise TemplateError(f"format-string template cannot be parsed: {exc} (write a literal brace as {{{{ or }}}})") from exc
    return names


@dataclass
class PairTemplate:
    """A pairwise comparison prompt.

    Parameters
    ----------
    text : str
        The user-message template (Jinja or format string, see the module docstring).
    kind : {"jinja", "format"}, optional
        Guessed from ``text`` when omitted.
    system : str, optional
        A system message; when omitted the model's chat template default applies.
    answer_prefix : str, optional
        Prefilled start of the judge's reply, rendered like ``text`` (same kind);
        the answer label is the token after it. ``""`` for none.
    labels : (str, str)
        The answer labels shown for the first and the second item.
    name : str
        Where the template came from (shown in run.json).

    Raises
    ------
    TemplateError
        If the template lacks ``item_a`` or ``item_b``, uses an unknown
        placeholder, or does not parse.
    """

    text: str = DEFAULT_TEMPLATE
    kind: Optional[str] = None
    system: Optional[str] = None
    labels: Tuple[str, str] = ("A", "B")
    name: str = "default"
    answer_prefix: Optional[str] = None
    placeholders: set = field(default_factory=set, init=False, repr=False)

    def __post_init__(self):
        if self.kind is None:
            self.kind = "jinja" if ("{{" in self.text or "{%" in self.text) else "format"
        if self.kind not in ("jinja", "format"):
            raise TemplateError(f"template kind={self.kind!r} is not 'jinja' or 'format'")
        self.labels = tuple(str(x) for x in self.labels)
        if len(self.labels) != 2 or self.labels[0] == self.labels[1] or not all(x.strip() for x in self.labels):
            raise TemplateError(f"labels={self.labels!r} must be two different non-empty strings")
        self.placeholders = _placeholders(self.text, self.kind)
        missing = [name for name in REQUIRED if name not in self.placeholders]
        if missing:
            raise TemplateError(
                f"template {self.name!r} has no placeholder for {' and '.join(missing)}: it must show both items, "
                + ("e.g. {{ item_a }} and {{ item_b }}" if self.kind == "jinja" else "e.g. {item_a} and {item_b}")
            )
        unknown = sorted(self.placeholders - set(VARIABLES))
        if unknown:
            raise TemplateError(
                f"template {self.name!r} uses unknown placeholder(s) {', '.join(unknown)}; "
                f"available: {', '.join(VARIABLES)}"
            )
        if self.answer_prefix is None:
            self.answer_prefix = DEFAULT_ANSWER_PREFIX
        prefix_kind = "jinja" if ("{{" in self.answer_prefix or "{%" in self.answer_prefix) else "format"
        if self.answer_prefix.endswith((" ", "\n")):
            raise TemplateError(
                f"answer prefix {self.answer_prefix!r} ends with whitespace: the label token carries its own "
                f"leading space (' A'), so end the prefix on a word"
            )
        unknown = sorted(_placeholders(self.answer_prefix, prefix_kind) - set(VARIABLES))
        if unknown:
            raise TemplateError(f"answer prefix uses unknown placeholder(s) {', '.join(unknown)}; "
                                f"available: {', '.join(VARIABLES)}")
        self._prefix_kind = prefix_kind
        self._compiled = _jinja_env().from_string(self.text) if self.kind == "jinja" else None
        self._compiled_prefix = _jinja_env().from_string(self.answer_prefix) if prefix_kind == "jinja" else None

    @classmethod
    def from_file(cls, path: Union[str, os.PathLike], **kwargs) -> "PairTemplate":
        """Read a template from a file (Jinja when the suffix is .j2/.jinja/.jinja2 or it uses ``{{``)."""
        path = Path(path)
        if not path.is_file():
            raise TemplateError(f"template file {os.fspath(path)!r} does not exist")
        text = path.read_text(encoding="utf-8")
        if not text.strip():
            raise TemplateError(f"template file {os.fspath(path)!r} is empty")
        kind = "jinja" if path.suffix.lower() in (".j2", ".jinja", ".jinja2") else None
        lines = text.split("\n")
        marks = [k for k, line in enumerate(lines) if line.strip() == ASSISTANT_MARKER]
        if len(marks) > 1:
            raise TemplateError(f"template file {os.fspath(path)!r} has {len(marks)} {ASSISTANT_MARKER} lines; use one")
        if marks:
            user = "\n".join(lines[: marks[0]]).strip("\n")
            prefix = "\n".join(lines[marks[0] + 1:]).strip()
            kwargs.setdefault("answer_prefix", prefix)
            text = user
        if kind is None and ("{{" in text or "{%" in text):
            kind = "jinja"
        return cls(text=text.rstrip("\n"), kind=kind, name=os.fspath(path), **kwargs)

    @property
    def uses_context(self) -> bool:
        return "context" in self.placeholders

    def _values(self, item_a, item_b, attribute, noun, context, context_noun) -> dict:
        return {
            "item_a": item_a,
            "item_b": item_b,
            "attribute": attribute,
            "noun": noun,
            "Noun": noun[:1].upper() + noun[1:],
            "context": context if context is not None else "",
            "context_noun": context_noun,
            "label_a": self.labels[0],
            "label_b": self.labels[1],
        }

    def render_prefix(self, *, attribute: str = "better", noun: str = "text", context_noun: str = "Context") -> str:
        """The prefilled start of the judge's reply (same for every pair of a run)."""
        values = self._values("", "", attribute, noun, None, context_noun)
        if self._compiled_prefix is not None:
            return self._compiled_prefix.render(**values)
        return self.answer_prefix.format(**values)

    def render(
        self,
        item_a: str,
        item_b: str,
        *,
        attribute: str = "better",
        noun: str = "text",
        context: Optional[str] = None,
        context_noun: str = "Context",
    ) -> str:
        """Return the user message comparing ``item_a`` (shown first) with ``item_b``."""
        values = self._values(item_a, item_b, attribute, noun, context, context_noun)
        if self._compiled is not None:
            return self._compiled.render(**values)
        return self.text.format(**values)

    def fingerprint(self) -> dict:
        """What identifies this template in a resumable judgements file."""
        return {
            "name": self.name,
            "sha256": hashlib.sha256(
                "\x00".join([self.kind, self.text, self.system or "", self.answer_prefix, *self.labels]).encode()
            ).hexdigest()[:16],
            "labels": list(self.labels),
        }


def load_template(
    path: Optional[Union[str, os.PathLike]] = None,
    *,
    system: Optional[str] = None,
    labels: Sequence[str] = ("A", "B"),
    answer_prefix: Optional[str] = None,
) -> PairTemplate:
    """Return the default template, or the one in ``path``.

    ``answer_prefix`` overrides the template's (``""`` for none).
    """
    extra = {} if answer_prefix is None else {"answer_prefix": answer_prefix}
    if path is None:
        return PairTemplate(system=system, labels=tuple(labels), **extra)
    return PairTemplate.from_file(path, system=system, labels=tuple(labels), **extra)


#: User message of the pointwise (``rail``) prompt.
POINT_TEMPLATE = (
    "{context_block}{Noun}:\n{item}\n\n"
    "How {quality} is this {noun}? Rate it on a scale of {lo} to {hi}, where {lo} is worst and {hi} is best. "
    "Answer with one digit."
)
#: Prefilled start of the pointwise reply; the score digit is the next token.
POINT_PREFIX = "Score: "
#: User message of the generation (``rank``) prompt; the candidate is the reply.
GENERATE_TEMPLATE = "{context_block}Write a {noun} that is as {quality} as possible."


def quality_word(attribute: str) -> str:
    """The quality an attribute compares: ``"more coherent"`` -> ``"coherent"``; ``"better"`` -> ``"good"``."""
    words = attribute.strip().split()
    if words and words[0].lower() in ("more", "less") and len(words) > 1:
        return " ".join(words[1:])
    return {"better": "good", "worse": "bad"}.get(attribute.strip().lower(), attribute.strip())


def _context_block(context: Optional[str], context_noun: str) -> str:
    return f"{context_noun}:\n{context}\n\n" if context else ""


def render_point(item: str, *, lo: int, hi: int, attribute: str = "better", noun: str = "text",
                 context: Optional[str] = None, context_noun: str = "Context") -> str:
    """The user message of the pointwise prompt: rate ``item`` from ``lo`` (worst) to ``hi`` (best).

    Parameters
    ----------
    item : str
    lo, hi : int
        The ends of the score scale.
    attribute, noun, context, context_noun : str
        As for a pairwise template (``attribute`` is the comparative: ``"more coherent"``).

    Returns
    -------
    str
    """
    return POINT_TEMPLATE.format(context_block=_context_block(context, context_noun),
                                 Noun=noun[:1].upper() + noun[1:], item=item, quality=quality_word(attribute),
                                 noun=noun, lo=lo, hi=hi)


def render_generate(*, attribute: str = "better", noun: str = "text", context: Optional[str] = None,
                    context_noun: str = "Context") -> str:
    """The user message of the generation prompt, whose reply is a candidate item.

    Parameters
    ----------
    attribute, noun, context, context_noun : str
        As for :func:`render_point`.

    Returns
    -------
    str
    """
    return GENERATE_TEMPLATE.format(context_block=_context_block(context, context_noun), noun=noun,
                                    quality=quality_word(attribute))

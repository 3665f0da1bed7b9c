"""The privacy layer's HTML pages (the access export's ``index.html``, the compliance pack's
``index.html``), rendered from the Jinja templates in ``lethe/privacy/templates/`` with every value
escaped (autoescape): a photo's path or published URL, a source's purpose, a stated search purpose
cannot become markup. A missing value is an error, never an empty string."""

from __future__ import annotations

import functools

import jinja2


def counted(n: object, noun: str, plural: str | None = None) -> str:
    """A count with its noun in the right number: '1 face', '0 faces', '1,204 photos' (never the
    'face(s)' the newcomer review stumbled on). ``plural`` for the nouns that do not take an -s."""
    number = int(str(n))
    return f"{number:,} {noun if number == 1 else (plural or noun + 's')}"


@functools.cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("lethe.privacy", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["counted"] = counted
    return environment


def render(template: str, **values: object) -> str:
    """The page ``template`` (a file name in ``lethe/privacy/templates/``) filled with ``values``."""
    return _environment().get_template(template).render(**values)

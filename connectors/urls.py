"""Masking of database passwords: the one function every message, manifest and report uses.

A password can appear in a database URL in four ways, and each is masked with ``***``:

- the userinfo: ``postgresql://alice:s3cret@host/db``;
- a query parameter: ``...?password=s3cret``, ``?passwd=``, ``?pwd=``, ``?sslpassword=``
  (any case);
- a libpq key/value DSN: ``host=db user=alice password='s 3cret'``;
- the same forms inside a longer text (an error message quoting the URL).

`mask_url` renders one URL (or DSN) for display; `mask_secrets` masks every such form inside an
arbitrary text. Neither ever raises: an unparseable URL is still masked textually.
"""

from __future__ import annotations

import re

__all__ = ["SECRET_KEYS", "mask_secrets", "mask_url"]

MASK = "***"
SECRET_KEYS = ("password", "passwd", "pwd", "sslpassword")

# scheme://user:PASSWORD@host: the password runs to the last '@' of the authority
_USERINFO = re.compile(
    r"(?P<pre>\b[A-Za-z][\w+.-]*://[^\s:/@?#]*:)(?P<pw>[^\s@]*(?:@[^\s@/?#]*(?=[^\s/?#]*@))*)@"
)
# key=value in a URL query (?password=x&...) or a libpq DSN (password = 'a b')
_KEY_VALUE = re.compile(
    r"(?P<key>\b(?:" + "|".join(SECRET_KEYS) + r"))(?P<eq>\s*=\s*)"
    r"(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s&;,]*)",
    re.IGNORECASE,
)


def mask_secrets(text: str) -> str:
    """``text`` with every password of a URL or DSN in it replaced by ``***``.

    Parameters
    ----------
    text : str
        Any text: a URL, a DSN, an error message quoting either.

    Returns
    -------
    str

    Examples
    --------
    >>> mask_secrets("postgresql://a:pw@h/db?sslmode=require&password=x y=1")
    'postgresql://a:***@h/db?sslmode=require&password=*** y=1'
    >>> mask_secrets("host=h user=a password='p w' dbname=r")
    'host=h user=a password=*** dbname=r'
    """
    text = _USERINFO.sub(lambda m: m["pre"] + (MASK if m["pw"] else "") + "@", text)
    return _KEY_VALUE.sub(lambda m: m["key"] + m["eq"] + (MASK if m["value"] else ""), text)


def mask_url(url: object) -> str:
    """A database URL (str or ``sqlalchemy.URL``) or libpq DSN as text, passwords masked.

    A ``sqlalchemy.URL`` object is rendered first (its ``str()`` already hides the userinfo
    password, but not a ``?password=`` query parameter); text is masked as given, so a
    malformed URL is shown as written, minus its secrets.

    Examples
    --------
    >>> mask_url("mysql+pymysql://bob@db/registry?passwd=s3cret&charset=utf8mb4")
    'mysql+pymysql://bob@db/registry?passwd=***&charset=utf8mb4'
    """
    render = getattr(url, "render_as_string", None)
    text = render(hide_password=True) if callable(render) else str(url)
    return mask_secrets(text)

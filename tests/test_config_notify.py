"""``[[notify]]`` in the site config: each kind parses, and every mistake names file:line: key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui.config import EXAMPLE_CONFIG, ConfigError, load_config, parse_config
from tui.notify import NotifyConfig

SITE = '[site]\nname = "T"\nelectricity_usd_kwh = 0.06\n'
ENV = {
    "SMTP_PW": "hunter2-very-secret",
    "NTFY_TOKEN": "tk_secret_token_123",
    "SLACK_URL": "https://hooks.slack.com/services/T000/B000/XXXXSECRET",
    "HOOK_AUTH": "Bearer abcdef123456",
}


def parse(text: str, environ: dict[str, str] | None = None) -> tuple[NotifyConfig, ...]:
    cfg = parse_config(text, path=Path("config.toml"), environ=ENV if environ is None else environ)
    return cfg.notify


def errors(text: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as ei:
        parse_config(text, path=Path("config.toml"), environ=ENV if environ is None else environ)
    return str(ei.value)


def one_error(text: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as ei:
        parse_config(text, path=Path("config.toml"), environ=ENV if environ is None else environ)
    assert len(ei.value.issues) == 1, str(ei.value)
    return str(ei.value)


def lineno(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), 1) if needle in ln)


# --------------------------------------------------------------------------- valid


def test_no_notify_tables_is_an_empty_tuple() -> None:
    assert parse(SITE) == ()


def test_each_kind_parses_with_defaults() -> None:
    text = SITE + (
        '[[notify]]\nkind = "webhook"\nurl = "https://ops.example.com/hook?x=1"\n'
        '[[notify]]\nkind = "ntfy"\nurl = "https://ntfy.sh/site-alerts"\n'
        '[[notify]]\nkind = "slack"\nurl = "https://hooks.slack.com/services/T/B/C"\n'
        '[[notify]]\nkind = "email"\nhost = "smtp.example.com"\nfrom = "a@example.com"\n'
        'to = "ops@example.com"\n'
    )
    hook, ntfy, slack, mail = parse(text)
    assert hook == NotifyConfig("webhook", "webhook[0]", url="https://ops.example.com/hook?x=1")
    assert hook.min_severity == "warning" and hook.kinds is None
    assert hook.events == ("fired", "cleared")
    assert ntfy == NotifyConfig("ntfy", "ntfy[1]", url="https://ntfy.sh/site-alerts")
    assert ntfy.priority is None and ntfy.tags == () and ntfy.token_env is None
    assert slack == NotifyConfig("slack", "slack[2]", url="https://hooks.slack.com/services/T/B/C")
    assert mail == NotifyConfig(
        "email",
        "email[3]",
        host="smtp.example.com",
        sender="a@example.com",
        to=("ops@example.com",),
    )
    assert mail.port == 587 and mail.starttls is True and mail.username is None


def test_every_key_of_every_kind() -> None:
    text = SITE + (
        "[[notify]]\n"
        'kind = "webhook"\nname = "ops"\nmin_severity = "critical"\n'
        'kinds = ["offline", "temp", "future-kind", "offline"]\nevents = ["fired"]\n'
        'url = "http://10.0.0.5:8080/minertop"\n'
        'headers = { X-Site = "texas", "X-Api-Key" = "k-123" }\n'
        'headers_env = { Authorization = "HOOK_AUTH" }\n'
        "[[notify]]\n"
        'kind = "ntfy"\nurl = "https://ntfy.example.com/a/b"\ntitle = "Texas-A"\n'
        'priority = "HIGH"\ntags = ["pick", "warning"]\ntoken_env = "NTFY_TOKEN"\n'
        "[[notify]]\n"
        'kind = "ntfy"\nname = "n2"\nurl = "https://ntfy.sh/x"\npriority = 1\n'
        "[[notify]]\n"
        'kind = "slack"\nurl_env = "SLACK_URL"\nevents = ["cleared", "fired"]\n'
        "[[notify]]\n"
        'kind = "email"\nhost = "SMTP.Example.com"\nport = 2525\nstarttls = true\n'
        'username = "alerts@example.com"\npassword_env = "SMTP_PW"\n'
        'from = "minertop <alerts@example.com>"\nto = ["a@example.com", "B <b@example.org>"]\n'
        'subject_prefix = "[mine]"\n'
        "[[notify]]\n"
        'kind = "email"\nname = "relay"\nhost = "127.0.0.1"\nport = 25\nstarttls = false\n'
        'from = "x@example.com"\nto = "y@example.com"\n'
    )
    hook, ntfy, ntfy2, slack, mail, relay = parse(text)
    assert hook == NotifyConfig(
        "webhook",
        "ops",
        min_severity="critical",
        kinds=("offline", "temp", "future-kind"),
        events=("fired",),
        url="http://10.0.0.5:8080/minertop",
        headers=(("X-Site", "texas"), ("X-Api-Key", "k-123")),
        headers_env=(("Authorization", "HOOK_AUTH"),),
    )
    assert ntfy.title == "Texas-A" and ntfy.priority == 4 and ntfy.tags == ("pick", "warning")
    assert ntfy.token_env == "NTFY_TOKEN" and ntfy.name == "ntfy[1]"
    assert ntfy2.priority == 1
    assert slack.url is None and slack.url_env == "SLACK_URL"
    assert slack.events == ("cleared", "fired")
    assert mail.port == 2525 and mail.username == "alerts@example.com"
    assert mail.password_env == "SMTP_PW" and mail.sender == "minertop <alerts@example.com>"
    assert mail.to == ("a@example.com", "B <b@example.org>") and mail.subject_prefix == "[mine]"
    assert relay.starttls is False and relay.username is None and relay.to == ("y@example.com",)
    # secrets in the file (a URL, header values) stay out of repr
    assert "10.0.0.5" not in repr(hook) and "k-123" not in repr(hook)


def test_the_commented_example_parses_when_uncommented(tmp_path: Path) -> None:
    lines = EXAMPLE_CONFIG.splitlines()
    start = lines.index("# [[notify]]")
    end = next(i for i, ln in enumerate(lines) if "subject_prefix" in ln and ln.startswith("# "))
    block = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in lines[start : end + 1]]
    text = "\n".join(lines[:start] + block + lines[end + 1 :]) + "\n"
    env = {
        "MINERTOP_SLACK_URL": "https://hooks.slack.com/services/T/B/C",
        "MINERTOP_WEBHOOK_AUTH": "Bearer x",
        "MINERTOP_SMTP_PASSWORD": "pw",
    }
    p = tmp_path / "config.toml"
    p.write_text(text, encoding="utf-8")
    cfg = load_config(p, environ=env)
    assert cfg is not None
    assert [n.kind for n in cfg.notify] == ["ntfy", "slack", "webhook", "email"]
    assert cfg.notify[0].min_severity == "critical"
    assert cfg.notify[3].to == ("ops@example.com", "oncall@example.com")
    # commented out, the example has no notifications (and needs no variables)
    p.write_text(EXAMPLE_CONFIG, encoding="utf-8")
    cfg = load_config(p, environ={})
    assert cfg is not None and cfg.notify == ()


def test_load_config_checks_secrets_in_the_environ_it_is_given(tmp_path: Path) -> None:
    p = tmp_path / "config.toml"
    text = SITE + '[[notify]]\nkind = "slack"\nurl_env = "SLACK_URL"\n'
    p.write_text(text, encoding="utf-8")
    cfg = load_config(p, environ={"SLACK_URL": "https://hooks.slack.com/services/a"})
    assert cfg is not None and cfg.notify[0].url_env == "SLACK_URL"
    with pytest.raises(ConfigError) as ei:
        load_config(p, environ={})
    assert str(ei.value).endswith(
        f"config.toml:{lineno(text, 'url_env')}: notify[0].url_env: environment variable "
        "SLACK_URL is not set"
    )


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("body", "needle", "expected"),
    [
        (
            'kind = "pagerduty"\n',
            "pagerduty",
            'notify[0].kind: expected one of "webhook", "ntfy", "slack", "email", got "pagerduty"',
        ),
        ('name = "x"\n', "[[notify]]", "notify[0].kind: missing (required): one of webhook, ntfy,"),
        ('kind = "webhook"\n', "[[notify]]", "notify[0].url: missing (required)"),
        (
            'kind = "webhook"\nurl = "ftp://example.com/x"\n',
            "ftp",
            'notify[0].url: expected an http:// or https:// URL like "https://ops.example.com/'
            "minertop\", but it doesn't start with http:// or https://",
        ),
        (
            'kind = "webhook"\nurl = "example.com/hook"\n',
            "example.com",
            "notify[0].url: expected an http:// or https:// URL like "
            '"https://ops.example.com/minertop", but it doesn\'t start with http:// or https://',
        ),
        ('kind = "webhook"\nurl = "https:///x"\n', "https", "notify[0].url: expected an http://"),
        (
            'kind = "webhook"\nurl = "https://a b/x"\n',
            "https",
            "notify[0].url: expected an http://",
        ),
        ('kind = "webhook"\nurl = "https://a:99999/x"\n', "https", "notify[0].url: expected an"),
        ('kind = "webhook"\nurl = 5\n', "url", "notify[0].url: expected an http:// or https://"),
        (
            'kind = "ntfy"\nurl = "https://ntfy.sh/"\n',
            "ntfy.sh",
            'notify[0].url: expected an http:// or https:// URL like "https://ntfy.sh/my-site-'
            'alerts", but it has no topic after the host (the value is not repeated here',
        ),
        (
            'kind = "webhook"\nurl = "https://x.org/h"\ntitle = "t"\n',
            "title",
            "notify[0].title: unknown key; expected one of: kind, name, min_severity, kinds, "
            "events, url, headers, headers_env",
        ),
        (
            'kind = "ntfy"\nurl = "https://ntfy.sh/t"\ntoken = "abc"\n',
            "token =",
            'notify[0].token: unknown key (did you mean "token_env"?)',
        ),
        (
            'kind = "ntfy"\nurl = "https://ntfy.sh/t"\npriority = 6\n',
            "priority",
            'notify[0].priority: expected 1–5 or one of "min", "low", "default", "high", '
            '"urgent", got 6',
        ),
        (
            'kind = "ntfy"\nurl = "https://ntfy.sh/t"\npriority = "loud"\n',
            "priority",
            'notify[0].priority: expected 1–5 or one of "min", "low", "default", "high", '
            '"urgent", got "loud"',
        ),
        (
            'kind = "ntfy"\nurl = "https://ntfy.sh/t"\ntags = ["a,b"]\n',
            "tags",
            "notify[0].tags[0]: expected a tag of 1–64 ASCII characters without commas",
        ),
        (
            'kind = "ntfy"\nurl = "https://ntfy.sh/t"\ntoken_env = "NOPE"\n',
            "token_env",
            "notify[0].token_env: environment variable NOPE is not set",
        ),
        (
            'kind = "ntfy"\nurl = "https://ntfy.sh/t"\ntoken_env = "EMPTY"\n',
            "token_env",
            "notify[0].token_env: environment variable EMPTY is empty",
        ),
        (
            'kind = "ntfy"\nurl = "https://ntfy.sh/t"\nmin_severity = "info"\n',
            "min_severity",
            'notify[0].min_severity: expected one of "warning", "critical", got "info"',
        ),
        (
            'kind = "ntfy"\nurl = "https://ntfy.sh/t"\nevents = ["fired", "flapped"]\n',
            "events",
            'notify[0].events[1]: expected one of "fired", "cleared", got "flapped"',
        ),
        (
            'kind = "ntfy"\nurl = "https://ntfy.sh/t"\nkinds = []\n',
            "kinds",
            "notify[0].kinds: expected an array of 1–50 alert kinds",
        ),
        (
            'kind = "ntfy"\nurl = "https://ntfy.sh/t"\nkinds = ["offline", 3]\n',
            "kinds",
            "notify[0].kinds[1]: expected a string",
        ),
        (
            'kind = "slack"\n',
            "[[notify]]",
            "notify[0].url: missing (required): the incoming-webhook",
        ),
        (
            'kind = "slack"\nurl = "https://h.example/x"\nurl_env = "SLACK_URL"\n',
            "url_env",
            "notify[0].url_env: give url or url_env, not both",
        ),
        (
            'kind = "slack"\nurl_env = "MISSING_SLACK"\n',
            "url_env",
            "notify[0].url_env: environment variable MISSING_SLACK is not set",
        ),
        (
            'kind = "slack"\nurl_env = "SMTP_PW"\n',
            "url_env",
            "notify[0].url_env: environment variable SMTP_PW should hold the webhook URL, but "
            "it doesn't start with http:// or https://",
        ),
        (
            'kind = "slack"\nurl_env = "https://hooks.slack.com/x"\n',
            "url_env",
            "notify[0].url_env: expected the name of an environment variable",
        ),
        (
            'kind = "webhook"\nurl = "https://x.org/h"\nheaders = { Host = "evil" }\n',
            "headers",
            "notify[0].headers.Host: the Host header is set by minertop",
        ),
        (
            'kind = "webhook"\nurl = "https://x.org/h"\nheaders = { "Bad Name" = "v" }\n',
            "headers",
            'notify[0].headers."Bad Name": expected an HTTP header name',
        ),
        (
            'kind = "webhook"\nurl = "https://x.org/h"\nheaders = { X-N = 5 }\n',
            "headers",
            "notify[0].headers.X-N: expected a header value",
        ),
        (
            'kind = "webhook"\nurl = "https://x.org/h"\nheaders = ["X: y"]\n',
            "headers",
            "notify[0].headers: expected a table, got an array",
        ),
        (
            'kind = "webhook"\nurl = "https://x.org/h"\nheaders = { authorization = "x" }\n'
            'headers_env = { Authorization = "HOOK_AUTH" }\n',
            "headers_env",
            "notify[0].headers_env.Authorization: the Authorization header is also given in "
            "headers",
        ),
        (
            'kind = "webhook"\nurl = "https://x.org/h"\nheaders_env = { X-Key = "NOT_SET" }\n',
            "headers_env",
            "notify[0].headers_env.X-Key: environment variable NOT_SET is not set",
        ),
        (
            'kind = "webhook"\nurl = "https://x.org/h"\nheaders_env = { X-Key = "MULTI" }\n',
            "headers_env",
            "notify[0].headers_env.X-Key: environment variable MULTI should hold a header value",
        ),
        (
            'kind = "email"\nfrom = "a@example.com"\nto = "b@example.com"\n',
            "[[notify]]",
            "notify[0].host: missing (required): the SMTP server's host name",
        ),
        (
            'kind = "email"\nhost = "smtp://mail.example.com"\nfrom = "a@example.com"\n'
            'to = "b@example.com"\n',
            "host",
            "notify[0].host: expected an IP address or host name",
        ),
        (
            'kind = "email"\nhost = "m.example.com"\nport = 0\nfrom = "a@example.com"\n'
            'to = "b@example.com"\n',
            "port",
            "notify[0].port: expected an integer 1–65535, got 0",
        ),
        (
            'kind = "email"\nhost = "m.example.com"\nstarttls = "yes"\nfrom = "a@example.com"\n'
            'to = "b@example.com"\n',
            "starttls",
            'notify[0].starttls: expected true or false, got "yes"',
        ),
        (
            'kind = "email"\nhost = "m.example.com"\nusername = "u"\nfrom = "a@example.com"\n'
            'to = "b@example.com"\n',
            "[[notify]]",
            "notify[0].password_env: missing: username is set, so password_env",
        ),
        (
            'kind = "email"\nhost = "m.example.com"\npassword_env = "SMTP_PW"\n'
            'from = "a@example.com"\nto = "b@example.com"\n',
            "[[notify]]",
            "notify[0].username: missing: password_env is set, so username is required",
        ),
        (
            'kind = "email"\nhost = "m.example.com"\nusername = "u"\npassword_env = "SMTP_PW"\n'
            'starttls = false\nfrom = "a@example.com"\nto = "b@example.com"\n',
            "starttls",
            "notify[0].starttls: false with a username would send the password unencrypted",
        ),
        (
            'kind = "email"\nhost = "m.example.com"\nusername = "u"\n'
            'password_env = "SMTP_PASSWORD"\nfrom = "a@example.com"\nto = "b@example.com"\n',
            "password_env",
            "notify[0].password_env: environment variable SMTP_PASSWORD is not set",
        ),
        (
            'kind = "email"\nhost = "m.example.com"\nfrom = "not an address"\n'
            'to = "b@example.com"\n',
            "from",
            'notify[0].from: expected an email address like "alerts@example.com"',
        ),
        (
            'kind = "email"\nhost = "m.example.com"\nfrom = "a@example.com"\n'
            'to = ["b@example.com", "c at example.com"]\n',
            "to =",
            "notify[0].to[1]: expected an email address",
        ),
        (
            'kind = "email"\nhost = "m.example.com"\nfrom = "a@example.com"\nto = []\n',
            "to =",
            "notify[0].to: expected an array of 1–50 email addresses, got an array",
        ),
        (
            'kind = "email"\nhost = "m.example.com"\nfrom = "a@example.com"\n',
            "[[notify]]",
            "notify[0].to: missing (required)",
        ),
        (
            'kind = "email"\nhost = "m.example.com"\nfrom = "a@example.com"\nto = "b@x.org"\n'
            'subject_prefix = ""\n',
            "subject_prefix",
            "notify[0].subject_prefix: expected a non-empty string",
        ),
    ],
)
def test_notify_errors_name_the_line_and_key(body: str, needle: str, expected: str) -> None:
    text = SITE + "[[notify]]\n" + body
    env = dict(ENV, EMPTY="", MULTI="a\nb")
    msg = one_error(text, env)
    assert f"config.toml:{lineno(text, needle)}: {expected}" in msg, msg


def test_a_password_in_the_file_is_refused_without_repeating_it() -> None:
    text = SITE + (
        '[[notify]]\nkind = "email"\nhost = "m.example.com"\nusername = "u"\n'
        'password = "hunter2-in-the-file"\nfrom = "a@example.com"\nto = "b@example.com"\n'
    )
    msg = errors(text)
    assert (
        f"config.toml:{lineno(text, 'password =')}: notify[0].password: a password doesn't "
        "belong in the config file: put it in an environment variable and give that "
        "variable's name in password_env"
    ) in msg, msg
    assert "hunter2" not in msg


def test_urls_and_secrets_are_never_repeated_in_messages() -> None:
    secret = "T0SECRET/B0SECRET/XXXXXXXXSECRET"
    for body in (
        f'kind = "slack"\nurl = "hooks.slack.com/services/{secret}"\n',
        f'kind = "webhook"\nurl = "https://x y/{secret}"\n',
        f'kind = "ntfy"\nurl = "ntfy.sh/{secret}"\n',
        f'kind = "webhook"\nurl = "https://x.org/h"\nheaders = {{ X-K = "{secret}\\n" }}\n',
        f'kind = "email"\nhost = "m.x.org"\nusername = "u"\npassword_env = "{secret}"\n'
        'from = "a@x.org"\nto = "b@x.org"\n',
    ):
        msg = errors(SITE + "[[notify]]\n" + body)
        assert "SECRET" not in msg, msg
    msg = errors(SITE + '[[notify]]\nkind = "slack"\nurl_env = "BAD_URL"\n', {"BAD_URL": secret})
    assert "BAD_URL should hold the webhook URL" in msg and "SECRET" not in msg


def test_shapes_duplicates_and_several_problems_at_once() -> None:
    msg = one_error(SITE + '[notify]\nkind = "ntfy"\n')
    assert (
        "config.toml:4: notify: expected an array of tables ([[notify]] sections), got a table"
        in msg
    )
    msg = one_error("notify = [1]\n" + SITE)
    assert "config.toml:1: notify[0]: expected a table ([[notify]]), got 1" in msg
    text = SITE + (
        '[[notify]]\nkind = "ntfy"\nname = "phones"\nurl = "https://ntfy.sh/a"\n'
        '[[notify]]\nkind = "slack"\nname = "phones"\nurl = "https://h.example/b"\n'
    )
    msg = one_error(text)
    assert (
        'config.toml:10: notify[1].name: duplicate notify name "phones" (also at line 6)'
    ) in msg, msg
    text = SITE + (
        '[[notify]]\nkind = "ntfy"\nurl = "https://ntfy.sh/a"\npriority = 9\n'
        '[[notify]]\nkind = "email"\nhost = "m.x.org"\nfrom = "a@x.org"\nto = "b@x.org"\n'
        'password = "x"\n'
        '[[notify]]\nkind = "sms"\n'
    )
    e = errors(text)
    lines = e.splitlines()
    assert [ln.split(": ")[1] for ln in lines] == [
        "notify[0].priority",
        "notify[1].password",
        "notify[2].kind",
    ]
    assert all(ln.startswith("config.toml:") for ln in lines)


def test_unknown_top_level_key_suggests_notify() -> None:
    msg = one_error(SITE + '[[notfy]]\nkind = "ntfy"\n')
    assert 'notfy: unknown key (did you mean "notify"?)' in msg, msg


# --------------------------------------------------------------------------- email tls


def _mail(extra: str, port: int | None = None, login: bool = True) -> str:
    return SITE + (
        '[[notify]]\nkind = "email"\nhost = "smtp.example.com"\n'
        + (f"port = {port}\n" if port is not None else "")
        + extra
        + ('username = "u@example.com"\npassword_env = "SMTP_PW"\n' if login else "")
        + 'from = "a@example.com"\nto = "b@example.com"\n'
    )


def test_tls_modes_and_the_older_starttls_key() -> None:
    (m,) = parse(_mail('tls = "ssl"\n', 465))
    assert m.tls == "ssl" and m.tls_mode == "ssl" and m.starttls is False
    (m,) = parse(_mail('tls = "ssl"\n', 2465))  # any port can be implicit TLS
    assert m.tls_mode == "ssl" and m.port == 2465
    (m,) = parse(_mail('tls = "starttls"\n', 2525))
    assert m.tls_mode == "starttls" and m.starttls is True
    (m,) = parse(_mail('tls = "none"\n', 25, login=False))
    assert m.tls_mode == "none" and m.starttls is False
    (m,) = parse(_mail("starttls = true\n"))
    assert m.tls == "starttls" and m.port == 587
    (m,) = parse(_mail("starttls = false\n", 25, login=False))
    assert m.tls == "none"


def test_port_465_defaults_to_implicit_tls_and_587_to_starttls() -> None:
    (m,) = parse(_mail("", 465))
    assert m.tls is None and m.tls_mode == "ssl" and m.starttls is False
    (m,) = parse(_mail(""))
    assert m.port == 587 and m.tls is None and m.tls_mode == "starttls"


@pytest.mark.parametrize(
    ("extra", "port", "login", "needle", "expected"),
    [
        (
            'tls = "tls"\n',
            None,
            True,
            "tls =",
            'notify[0].tls: expected one of "starttls", "ssl", "none", got "tls"',
        ),
        (
            "tls = true\n",
            None,
            True,
            "tls =",
            'notify[0].tls: expected one of "starttls", "ssl", "none", got true',
        ),
        (
            'tls = "starttls"\n',
            465,
            True,
            "tls =",
            'notify[0].tls: tls = "starttls" doesn\'t work on port 465: that port expects '
            'implicit TLS from the first byte (the server never greets a plain connection): '
            'use tls = "ssl" (the default on port 465), or port 587 for STARTTLS',
        ),
        (
            "starttls = true\n",
            465,
            False,
            "starttls =",
            "notify[0].starttls: starttls = true doesn't work on port 465: that port expects "
            'implicit TLS',
        ),
        (
            'tls = "ssl"\nstarttls = true\n',
            None,
            True,
            "starttls =",
            'notify[0].starttls: give tls or starttls, not both (starttls = true is '
            'tls = "starttls", starttls = false is tls = "none")',
        ),
        (
            'tls = "none"\n',
            None,
            True,
            "tls =",
            'notify[0].tls: "none" with a username would send the password unencrypted: '
            'use tls = "starttls" or tls = "ssl"',
        ),
    ],
)
def test_tls_mistakes_name_the_line_and_key(
    extra: str, port: int | None, login: bool, needle: str, expected: str
) -> None:
    text = _mail(extra, port, login)
    msg = one_error(text)
    assert f"config.toml:{lineno(text, needle)}: {expected}" in msg, msg


def test_tls_is_only_an_email_key() -> None:
    msg = one_error(SITE + '[[notify]]\nkind = "ntfy"\nurl = "https://ntfy.sh/a"\ntls = "ssl"\n')
    assert "config.toml:7: notify[0].tls: unknown key" in msg, msg

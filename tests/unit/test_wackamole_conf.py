"""wackamole.conf: the original's lexing, grammar, values, defaults and error messages."""

from __future__ import annotations

import json
import re
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wackamole.config import (
    Action,
    ConfigError,
    WackamoleConfig,
    load_config,
    parse_config_text,
)
from wackamole.config.lexer import scan

VECTORS = Path(__file__).parent.parent / "vectors" / "config"
_RESULTS = json.loads((VECTORS / "wackamole_results.json").read_text())
CASES = {c["file"]: c for c in _RESULTS["cases"]}
CONF = Path(__file__).parent.parent.parent / "conf" / "wackamole.conf"


def parse(text: str) -> WackamoleConfig:
    return parse_config_text(text, "t.conf")


def error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config_text(text, "t.conf")
    return info.value


def offending(text: str) -> tuple[int, str]:
    """(0-based line, token) of the original's 'Parser error' lines for a bad config."""
    m = re.fullmatch(r"Parser error on or before line (\d+)\nOffending token: (.*)\n",
                     error(text).original_stderr, re.S)
    assert m, error(text).original_stderr
    return int(m[1]), m[2]


def vifs(body: str) -> str:
    return f"VirtualInterfaces {{ {body} }}\n"


# --- lexical rules ----------------------------------------------------------------------------

@pytest.mark.parametrize("word", ["spread", "all", "none", "NONE", "Prefer", "ping", "interval"])
def test_keywords_are_reserved_in_any_case(word: str) -> None:
    assert offending(f"Group = {word}\n") == (0, word)


@pytest.mark.parametrize("word", ["spread", "all", "none"])
def test_quoted_keyword_is_a_plain_value(word: str) -> None:
    assert parse(f'Group = "{word}"\n').group == word


def test_keywords_match_whatever_the_case() -> None:
    cfg = parse("gRoUp = a\nMATURE = 7s\nvips { eth0:10.0.0.1/32 }\nVIFs { eth0:10.0.0.2/32 }\n")
    assert (cfg.group, cfg.mature, len(cfg.vifs)) == ("a", 7, 2)


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("Spread=4805\n", "Spread=4805"),
        ("Spread =4805\n", "=4805"),
        ("Spread= 4805\n", "Spread="),
        ("Balance {\n AcquisitionsPerRound=all\n}\n", "AcquisitionsPerRound=all"),
    ],
)
def test_equals_needs_blanks_on_both_sides(text: str, token: str) -> None:
    assert offending(text)[1] == token


def test_word_that_starts_with_a_keyword_is_a_word() -> None:
    assert parse("Group = Prefer1\n").group == "Prefer1"
    assert parse("Group = nonex\n").group == "nonex"


def test_number_with_host_is_a_string_and_bare_number_is_not_a_group() -> None:
    assert parse("Spread = 4805@host\n").spread == "4805@host"
    assert offending("Group = 123\n") == (0, "123")
    assert parse('Group = "123"\n').group == "123"


def test_spread_number_is_reprinted_in_decimal() -> None:
    cfg = parse("Spread = 04803\n")
    assert (cfg.spread, cfg.spread_in_file) == ("4803", True)


@pytest.mark.parametrize(("text", "seconds"),
                         [("5s", 5), ("2m", 120), ("2M", 120), ("30S", 30), ("1h", 1), ("1H", 1)])
def test_time_units_and_hours_counted_as_seconds(text: str, seconds: int) -> None:
    assert parse(f"mature = {text}\n").mature == seconds


@pytest.mark.parametrize(("text", "token"), [("5", "5"), ("5 s", "5"), ("5sec", "5sec")])
def test_time_needs_its_unit_glued_on(text: str, token: str) -> None:
    assert offending(f"mature = {text}\n") == (0, token)


@pytest.mark.parametrize(
    ("item", "token"),
    [
        ("eth0:10.0.0.1", "eth0:10.0.0.1"),
        ("10.0.0.1/32n24", "10.0.0.1/32n24"),
        ("eth0:1.2.3.4/320", "eth0:1.2.3.4/320"),
        ("eth0:10.0.0.1/32N24", "eth0:10.0.0.1/32N24"),
    ],
)
def test_address_needs_mask_and_lower_case_hint(item: str, token: str) -> None:
    assert offending(vifs(item)) == (0, token)


def test_interface_names_take_any_non_blank_character_and_may_be_absent() -> None:
    cfg = parse(vifs("eth0.100:10.0.0.1/32 br-lan:10.0.0.2/32 10.0.0.3/32 all:10.0.0.4/32"))
    assert [v.primary.ifname for v in cfg.vifs] == ["eth0.100", "br-lan", "", "all"]


def test_braces_need_no_blanks() -> None:
    cfg = parse("VirtualInterfaces {{eth0:10.0.0.1/32}eth0:10.0.0.2/32}")
    assert [str(v.primary.address) for v in cfg.vifs] == ["10.0.0.1", "10.0.0.2"]


def test_hash_starts_a_comment_inside_a_word_but_not_inside_quotes() -> None:
    assert parse("Group = wack1#x\n").group == "wack1"
    assert parse("Control = '/var/run/wack#it'\n").control == "/var/run/wack#it"


def test_quote_rules_follow_longest_match() -> None:
    assert parse('Group = "abc\n').group == '"abc'  # unterminated: a plain word
    assert parse('Group = "abc"def\n').group == '"abc"def'  # the longer word wins
    assert parse("Group = 'a b'\n").group == "a b"


def test_carriage_returns_are_blanks() -> None:
    assert parse("Group = a\r\nmature = 3s\r\n").mature == 3


def test_action_needs_exactly_one_space() -> None:
    assert parse("RunDynamic foo.so:bar ON UP\n").hooks[0].action is Action.ON_UP
    assert offending("RunDynamic foo.so:bar on  up\n") == (0, "on")
    assert offending("RunDynamic foo.so:bar on\tup\n") == (0, "on")


def test_original_line_count_skips_newlines_inside_quotes() -> None:
    exc = error('Group = "a\nb"\nmature = 5\n')
    assert offending('Group = "a\nb"\nmature = 5\n') == (1, "5")
    assert (exc.problems[0].line, exc.problems[0].column) == (3, 10)  # what an editor shows


def test_quoted_offending_token_loses_its_closing_quote_like_the_original() -> None:
    assert offending('Spread = 4803 "abc"\n') == (0, '"abc')


def test_scanner_covers_every_character() -> None:
    text = 'Group = "x y" # c\n\tVIPs { eth0:1.2.3.4/32 } = =é\x00\n'
    tokens = scan(text).tokens
    assert [t.type for t in tokens] == ["GROUP", "EQUALS", "QSTRING", "VIFS", "LBRACE",
                                        "IPADDR", "RBRACE", "EQUALS", "STRING"]
    assert tokens[-1].text == "=é\x00"  # '=' glued to a word is part of the word


# --- directives and defaults -------------------------------------------------------------------

def test_empty_file_gives_the_defaults_the_program_really_uses() -> None:
    cfg = parse("# nothing\n")
    assert (cfg.spread, cfg.spread_in_file, cfg.spread_retry_interval) == ("4803", False, 5)
    assert (cfg.group, cfg.control, cfg.module_dir) == ("", "", ".")
    assert (cfg.mature, cfg.arp_cache) == (300, 60)  # the man page says Mature 5 s
    assert (cfg.balance_interval, cfg.balance_rate_configured) == (300, 1)  # man: 4 s
    assert cfg.balance_rate == 0  # clamped to nVIF // 2
    assert (cfg.prefer, cfg.vifs, cfg.notifications, cfg.hooks) == ((), (), (), ())


def test_scalars_last_one_wins_and_lists_append() -> None:
    cfg = parse("Group = a\nGroup = b\n" + vifs("eth0:10.0.0.1/32") + vifs("eth0:10.0.0.2/32"))
    assert cfg.group == "b"
    assert [str(v.primary.address) for v in cfg.vifs] == ["10.0.0.1", "10.0.0.2"]


def test_each_scalar_directive_sets_its_value() -> None:
    cfg = parse("SpreadRetryInterval = 9s\nControl = /tmp/w.sock\nArp-Cache = 30S\n"
                "LogFacility = local0\nModuleDir = /opt\n")
    assert (cfg.spread_retry_interval, cfg.control, cfg.arp_cache) == (9, "/tmp/w.sock", 30)
    assert (cfg.log_facility, cfg.module_dir) == ("local0", "/opt")


def test_arpcache_without_dash_is_not_a_directive() -> None:
    assert offending("arpcache = 30s\n") == (0, "arpcache")


def test_log_is_not_logfacility() -> None:
    assert offending("Log = local0\n") == (0, "Log")


def test_group_is_cut_to_31_characters() -> None:
    name = "abcdefghijklmnopqrstuvwxyz0123456789"
    assert parse(f"Group = {name}\n").group == name[:31]


def test_balance_all_forces_half_the_vifs_and_no_interval() -> None:
    body = vifs(" ".join(f"eth0:10.0.0.{i}/32" for i in range(1, 6)))
    cfg = parse(body + "Balance { AcquisitionsPerRound = 3 Interval = 10s "
                       "AcquisitionsPerRound = all }\n")
    assert (cfg.balance_rate_configured, cfg.balance_interval_configured) == (3, 10)
    assert (cfg.balance_all, cfg.balance_rate, cfg.balance_interval) == (True, 2, 0)


def test_balance_rate_is_clamped_to_half_the_vifs() -> None:
    body = vifs("eth0:10.0.0.1/32 eth0:10.0.0.2/32 eth0:10.0.0.3/32")
    cfg = parse(body + "Balance {\n AcquisitionsPerRound = 5\n interval = 7s\n}\n")
    assert (cfg.balance_rate, cfg.balance_interval) == (1, 7)


@pytest.mark.parametrize("text", ["Interval = 4s\n", "AcquisitionsPerRound = 2\n",
                                  "Balance { }\n", "Balance { Spread = 1 }\n"])
def test_balance_parameters_only_inside_a_balance_block(text: str) -> None:
    error(text)


def test_notify_items_in_every_form() -> None:
    cfg = parse("Notify { eth0:10.0.0.0/24 throttle 16 ping arp-cache ping 10.0.0.1/32 "
                "eth1:1.2.3.4/32 ping }\n")
    got = [(n.target and str(n.target), n.throttle, n.ping) for n in cfg.notifications]
    assert got == [("eth0:10.0.0.0/24", 16, True), (None, 0, True),
                   ("10.0.0.1/32", 0, False), ("eth1:1.2.3.4/32", 0, True)]
    assert any("never matches" in a for a in cfg.advice)


def test_notify_interface_named_arp_cache_is_the_arp_cache_like_the_original() -> None:
    cfg = parse("Notify { arp-cache0:10.0.0.1/32 throttle 3 ping }\n")
    assert [(n.is_arp_cache, n.throttle, n.ping) for n in cfg.notifications] == [(True, 3, True)]


def test_notify_arp_cache_and_none() -> None:
    assert [n.is_arp_cache for n in parse("Notify arp-cache\n").notifications] == [True]
    assert parse("Notify None\n").notifications == ()


@pytest.mark.parametrize("text", ["Notify {\n}\n", "Notify { arp-cache throttle 4 }\n",
                                  "Notify { eth0:1.2.3.4/32 ping throttle 4 }\n"])
def test_notify_rejects_empty_block_and_wrong_order(text: str) -> None:
    error(text)


def test_prefer_none_sends_the_zero_address() -> None:
    assert parse("Prefer None\n").prefer == (IPv4Address(0),)


def test_prefer_single_address_keeps_the_network_address() -> None:
    assert parse("Prefer eth0:10.0.0.5/32\n").prefer == (IPv4Address("10.0.0.5"),)
    assert parse("Prefer eth0:10.0.0.7/24\n").prefer == (IPv4Address("10.0.0.0"),)


def test_prefer_list_walks_the_first_octet_on_x86() -> None:
    cfg = parse("Prefer { eth0:10.0.0.4/30 }\n")
    assert cfg.prefer == tuple(IPv4Address(f"{i}.0.0.4") for i in (8, 9, 10, 11))
    assert any("not a /32" in a for a in cfg.advice)


def test_prefer_list_of_host_addresses() -> None:
    cfg = parse("Prefer { eth0:10.0.0.5/32 eth1:10.0.0.9/32 }\n")
    assert cfg.prefer == (IPv4Address("10.0.0.5"), IPv4Address("10.0.0.9"))


def test_prefer_list_stops_at_254_with_the_original_message() -> None:
    cfg = parse("Prefer { eth0:10.0.0.4/24 }\n")
    assert len(cfg.prefer) == 254
    assert cfg.prefer[:2] == (IPv4Address("0.0.0.4"), IPv4Address("1.0.0.4"))
    assert cfg.messages == ("Only 254 prefered allowed.\n\n",)


def test_prefer_by_host_name_prints_and_adds_nothing() -> None:
    cfg = parse("Prefer somehost\n")
    assert (cfg.prefer, cfg.messages) == ((), ("Couldn't lookup somehost.\n\n",))


def test_prefer_block_must_not_be_empty() -> None:
    assert offending("Prefer { }\n") == (0, "}")


def test_grouped_vif_has_a_primary_and_extras_with_derived_fields() -> None:
    cfg = parse(vifs("{ eth0:10.0.0.1/32 eth1:192.168.0.1/24n22 eth0:10.0.0.2/32 } "
                     "eth0:10.0.0.9/32"))
    first, second = cfg.vifs
    assert str(first.primary) == "eth0:10.0.0.1/32"
    extra = first.extras[0]
    assert (extra.ifname, str(extra.netmask), str(extra.broadcast), str(extra.hint)) == (
        "eth1", "255.255.255.0", "192.168.0.255", "255.255.252.0")
    assert str(first.extras[1].address) == "10.0.0.2"
    assert (str(second.primary), second.extras) == ("eth0:10.0.0.9/32", ())


def test_single_vif_derived_fields_and_default_hint() -> None:
    (vif,) = parse(vifs("eth0:192.0.2.101/32")).vifs
    p = vif.primary
    assert (str(p.netmask), str(p.broadcast), str(p.hint)) == (
        "255.255.255.255", "192.0.2.101", "255.255.255.0")


def test_mask_zero_acts_as_32_like_x86() -> None:
    (vif,) = parse(vifs("eth0:10.0.0.1/0n0")).vifs
    assert (str(vif.primary.netmask), str(vif.primary.hint)) == ("255.255.255.255",) * 2


def test_rundynamic_uses_the_moduledir_in_force_at_that_line() -> None:
    cfg = parse("RunDynamic a.so:f on up\nModuleDir = /x\nRunDynamic b.so:g:h post down\n")
    assert [(h.module, h.function, h.action) for h in cfg.hooks] == [
        ("./a.so", "f", Action.ON_UP), ("/x/b.so", "g:h", Action.POST_DOWN)]


@pytest.mark.parametrize("name", ["example::dump_it", "plainfunc"])
def test_perl_style_rundynamic_fails_with_the_original_message(name: str) -> None:
    exc = error(f"RunDynamic {name} on up\n")
    assert exc.original_stdout == (
        "RunDynamic with perl-style parameter, without embedded perl interpreter\n")


@pytest.mark.parametrize("directive", ["PerlUse example", "PerlUseLib /usr/lib/perl"])
def test_perl_directives_fail_with_the_original_message(directive: str) -> None:
    exc = error(directive + "\n")
    assert exc.original_stdout == "PerlUseLib used, without embedded perl interpreter\n"
    assert exc.original_stderr == ""


# --- errors --------------------------------------------------------------------------------------

def test_error_message_names_file_line_column_found_expected_and_points_at_it() -> None:
    exc = error("Spread = 4805\nGroup = wack1\n\tmature = 5\n")
    lines = str(exc).split("\n")
    assert lines[0].startswith("t.conf:3:11: found '5'")
    assert "expected a time with its unit" in lines[0]
    assert lines[1] == "    \tmature = 5"
    assert lines[2] == "    \t" + " " * 9 + "^"


def test_error_at_end_of_file_points_after_the_last_text() -> None:
    exc = error("Spread = 4805\nVirtualInterfaces {\n\teth0:192.0.2.101/32\n")
    p = exc.problems[0]
    assert (p.line, p.column, p.found) == (3, 21, "found end of file")
    assert "'}'" in p.expected


def test_bad_octet_mask_and_hint_are_errors_after_the_original_lines() -> None:
    exc = error(vifs("eth0:300.0.0.1/32 eth0:10.0.0.1/33 eth0:10.0.0.1/32n40 eth0:1.2.3.4/32"))
    assert exc.original_stderr == "".join(
        f"Parser error on or before line 0\nOffending token: {t}\n"
        for t in ("eth0:300.0.0.1/32", "eth0:10.0.0.1/33", "eth0:10.0.0.1/32n40"))
    assert [p.column for p in exc.problems] == [21, 39, 56]


def test_bad_octet_before_a_syntax_error_is_reported_first() -> None:
    exc = error(vifs("eth0:300.0.0.1/32") + "Group = all\n")
    assert [p.original.split("\n")[1] for p in exc.problems] == [
        "Offending token: eth0:300.0.0.1/32", "Offending token: all"]


def test_interface_name_longer_than_15_bytes_is_refused() -> None:
    parse(vifs("abcdefghijklmno:10.0.0.1/32"))
    exc = error(vifs("abcdefghijklmnop:10.0.0.1/32"))
    assert "at most 15 bytes" in str(exc)


def test_more_than_29_extras_is_refused() -> None:
    ok = " ".join(f"eth0:10.0.1.{i}/32" for i in range(1, 31))
    assert len(parse(vifs("{ " + ok + " }")).vifs[0].extras) == 29
    assert "at most 30 addresses" in str(error(vifs("{ " + ok + " eth0:10.0.2.1/32 }")))


def test_more_than_254_vifs_is_refused() -> None:
    items = " ".join(f"eth0:10.0.{i // 250}.{i % 250 + 1}/32" for i in range(255))
    assert "at most 254 virtual interfaces" in str(error(vifs(items)))


def test_numbers_beyond_a_c_int_are_refused() -> None:
    assert "no larger than" in str(error("Balance { AcquisitionsPerRound = 99999999999 }\n"))
    assert "no longer than" in str(error("mature = 40000000m\n"))
    assert "no larger than" in str(error("Spread = " + "9" * 5000 + "\n"))
    assert parse("mature = " + "0" * 5000 + "7s\n").mature == 7


def test_control_path_must_fit_a_unix_socket() -> None:
    parse("Control = /" + "a" * 106 + "\n")
    assert "at most 107 bytes" in str(error("Control = /" + "a" * 107 + "\n"))


# --- captured vectors ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c["exit_status"] == 255))
def test_vector_syntax_errors_print_the_originals_lines(name: str) -> None:
    case = CASES[name]
    with pytest.raises(ConfigError) as info:
        load_config(VECTORS / "wackamole" / name)
    expected = case["stderr"].removesuffix("Error reading config file.\n")
    assert info.value.original_stderr == expected
    assert info.value.original_stdout == case["stdout"] == ""


def test_vector_bad_octet_prints_the_originals_lines_but_refuses_to_load() -> None:
    case = CASES["good_bad_octet_still_loads.conf"]
    with pytest.raises(ConfigError) as info:
        load_config(VECTORS / "wackamole" / case["file"])
    assert info.value.original_stderr == case["stderr"]  # the original then ran anyway


def test_vector_perluse_prints_the_originals_message() -> None:
    case = CASES["bad_perluse.conf"]
    with pytest.raises(ConfigError) as info:
        load_config(VECTORS / "wackamole" / case["file"])
    assert info.value.original_stdout == case["stdout"]


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c["exit_status"] == 0
                                        and n.startswith(("good_blog", "good_m", "good_f",
                                                          "good_s", "good_n", "quirk"))))
def test_vector_good_configs_connect_where_the_original_did(name: str) -> None:
    case = CASES[name]
    cfg = load_config(VECTORS / "wackamole" / name)
    connecting = re.search(r"^connecting to (\S+)$", case["stdout_untimestamped"], re.M)
    assert connecting and cfg.spread == connecting[1]
    # The original's start-up clean-up logs one "Dequeued" per VIF.
    first_cleanup = case["stdout_untimestamped"].split("Local arp-cache")[0]
    assert first_cleanup.count("Dequeued arp spoof notifier.") == len(cfg.vifs)


def test_blog_config_values() -> None:
    cfg = load_config(VECTORS / "wackamole" / "good_blog.conf")
    assert (cfg.spread, cfg.group, cfg.control, cfg.spread_retry_interval) == (
        "4805", "wack1", "/var/run/", 5)
    assert (cfg.mature, cfg.arp_cache, cfg.prefer) == (5, 20, (IPv4Address(0),))
    assert [str(v.primary) for v in cfg.vifs] == ["eth0:192.0.2.101/32", "eth0:192.0.2.102/32"]
    (n,) = cfg.notifications
    assert (str(n.target), n.throttle, n.ping) == ("eth0:192.0.2.255/32", 8, False)
    assert (cfg.balance_all, cfg.balance_rate, cfg.balance_interval) == (True, 1, 0)


def test_shipped_conf_is_the_blog_configuration() -> None:
    shipped = load_config(CONF)
    blog = load_config(VECTORS / "wackamole" / "good_blog.conf")
    assert shipped.vifs and shipped.vifs == blog.vifs
    assert (shipped.spread, shipped.group, shipped.control, shipped.mature) == (
        blog.spread, blog.group, blog.control, blog.mature)
    assert (shipped.notifications, shipped.prefer, shipped.balance_all, shipped.arp_cache) == (
        blog.notifications, blog.prefer, blog.balance_all, blog.arp_cache)


# The sample wackamole.conf shipped with the original sources (re-typed as test data).
ORIGINAL_SAMPLE = """\
# The Spread daemon we are going to connect to.  It should be on the local box
Spread = 4803@127.0.0.1
SpreadRetryInterval = 5s
# The group name
Group = wack1

# Named socket for online control
#Control = /var/run/wack.it

# Win32: specify a host:port combination for the control
Control = 127.0.0.1:2413

#PerlUseLib .
#PerlUse example
#RunDynamic funcs:killhup on up
#RunDynamic example::dump_it on up
# Denote the interface we prefer to have
#prefer eth0:10.3.4.5/8
#prefer { eth0:10.2.3.4/8 eth1:192.168.10.23/24 }

# In most cases, I just don't care.  Let wackamole decide.
Prefer None

# List all the virtual interfaces (ALL of them)
VirtualInterfaces {
\t# The following two lines have the same effect
\t# en0:192.168.1.2/24

\t# Win32: note that you *must* match the netmask with the netmask
\t# already configured on a given interface, otherwise the IP address
\t# won't be added.
\t# The interface names match those that you'll see under Network Connections
\t# in the control panel; you'll probably need to renamed them so that
\t# they don't include spaces in their names.
\t{ brlan0:10.80.116.41/23 }
\t
\t# This is how you say 2 or more IPs are to be treated as a single
\t# "set" or "virtual interface".  If wackamole decides that this
\t# machine will manage it, you are ensured to get ALL the ips in the
\t# set.
#\t{ en1:10.0.0.1/8 en0:192.168.35.64/26 }
}

# Collect and broadcast the IPs in our ARP table every so often
Arp-Cache = 90s

# List who we will notify
#\tHere the netblock (/24 or /28) can be deceptive.  It is NOT a netmask
#\tfor a single IP.  It is how one will describe that they want to
#\tnotify ALL IPs in a segment.
Notify {
\t# Let's notify our router:
#\ten0:192.168.10.1/32
\tbrlan0:10.80.116.41/23
\t# Notify out DNS servers
#\ten1:10.0.0.10/32
#\ten1:10.0.0.11/32
\t# 10.0.0.0 -> 10.0.0.255, but only 128 notifications/sec
#\ten0:10.0.0.0/24 throttle 128
\t# Wackamole shares arp-cache across machines, this says to
\t# notify every IP address in the aggregate shared arp-cache.
\tarp-cache
}
balance {
\t# This field is the maximum number of IP addresses that will move
\t# from one wackamole to another during a round of balancing.
\tAcquisitionsPerRound = all
\t# Time interval in each balancing round.
\tinterval = 4s
}
# How long it takes us to mature
mature = 5s
"""


def test_original_sample_config_parses_as_written() -> None:
    cfg = parse(ORIGINAL_SAMPLE)
    assert (cfg.spread, cfg.group, cfg.control) == ("4803@127.0.0.1", "wack1", "127.0.0.1:2413")
    assert [str(v.primary) for v in cfg.vifs] == ["brlan0:10.80.116.41/23"]
    assert str(cfg.vifs[0].primary.broadcast) == "10.80.117.255"
    assert [n.target and str(n.target) for n in cfg.notifications] == [
        "brlan0:10.80.116.41/23", None]
    assert (cfg.arp_cache, cfg.mature, cfg.balance_all, cfg.balance_interval) == (90, 5, True, 0)


# --- generated and mutated configurations --------------------------------------------------------

_word = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-_./"), min_size=1,
                max_size=12).filter(lambda w: not re.fullmatch(r"\d+[smhSMH]?", w))
_octet = st.integers(0, 255)
_ip = st.builds(lambda i, a, b, c, d, m: f"{i}:{a}.{b}.{c}.{d}/{m}",
                st.sampled_from(["eth0", "eth1", "br-lan", "bond0.7"]),
                _octet, _octet, _octet, _octet, st.integers(1, 32))
# The same addresses as written with leading zeros (the original reads them with atoi).


def _pad(ip: str, widths: list[int]) -> tuple[str, str]:
    width = iter(widths)
    return ip, re.sub(r"(?<=[:.])(\d+)(?=[./])", lambda m: m[1].zfill(next(width)), ip)


_padded = st.builds(_pad, _ip, st.lists(st.integers(1, 3), min_size=4, max_size=4))
_time = st.builds(lambda n, u: f"{n}{u}", st.integers(0, 10000), st.sampled_from("sSmM"))


@st.composite
def _config(draw: st.DrawFn) -> tuple[str, dict[str, object]]:
    lines: list[str] = []
    want: dict[str, object] = {}
    group = draw(_word)
    tokens = scan(group).tokens
    plain = len(tokens) == 1 and tokens[0].type == "STRING"  # else quote it (keyword, number)
    lines.append(f"Group = {group}" if plain else f'Group = "{group}"')
    want["group"] = group[:31]
    mature = draw(_time)
    lines.append(f"Mature = {mature}")
    want["mature"] = int(mature[:-1]) * (60 if mature[-1] in "mM" else 1)
    items = draw(st.lists(_padded, min_size=1, max_size=6))
    lines.append("VirtualInterfaces {\n" + "\n".join(f"\t{i[1]}" for i in items) + "\n}")
    want["vifs"] = [i[0] for i in items]
    if draw(st.booleans()):
        lines.append(f"Notify {{ {draw(_ip)} throttle {draw(st.integers(0, 999))} }}")
    if draw(st.booleans()):
        lines.append("Balance {\n AcquisitionsPerRound = all\n Interval = 4s\n}")
    draw(st.randoms()).shuffle(lines)
    return "\n".join(lines) + "\n", want


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_config())
def test_generated_configs_parse_to_what_they_say(case: tuple[str, dict[str, object]]) -> None:
    text, want = case
    cfg = parse(text)
    assert cfg.group == want["group"]
    assert cfg.mature == want["mature"]
    assert [str(v.primary) for v in cfg.vifs] == want["vifs"]


_mutation = st.tuples(st.integers(0, 10_000), st.integers(0, 3),
                      st.sampled_from([*"{}=#\"' \n\t:/.n0123456789aszé\x00\r", "Group",
                                       "on up", "all", "VIPs", "throttle", "ping", "eth0:"]))


def _mutate(text: str, mutations: list[tuple[int, int, str]]) -> str:
    for pos, kind, chunk in mutations:
        pos = pos % (len(text) + 1)
        if kind == 0:
            text = text[:pos] + text[pos + 1:]
        elif kind == 1:
            text = text[:pos] + chunk + text[pos:]
        elif kind == 2:
            text = text[:pos] + chunk + text[pos + len(chunk):]
        else:
            text = text[pos:] + text[:pos]
    return text


def _accepts_or_config_error(text: str) -> None:
    try:
        cfg = parse(text)
    except ConfigError as exc:
        assert exc.problems
        n_lines = text.count("\n") + 1
        for p in exc.problems:
            assert 1 <= p.line <= n_lines and p.column >= 1
            assert p.render().count("\n") == 2
    else:
        assert isinstance(cfg, WackamoleConfig)


@settings(max_examples=150, deadline=None)
@given(st.lists(_mutation, min_size=1, max_size=6),
       st.sampled_from([ORIGINAL_SAMPLE, (VECTORS / "wackamole" / "good_full.conf").read_text(),
                        (VECTORS / "wackamole" / "good_blog.conf").read_text()]))
def test_mutated_configs_only_ever_raise_config_error(
    mutations: list[tuple[int, int, str]], base: str
) -> None:
    _accepts_or_config_error(_mutate(base, mutations))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_only_ever_raises_config_error(text: str) -> None:
    _accepts_or_config_error(text)


@pytest.mark.parametrize(("text", "action"), [("on up", Action.ON_UP), ("On Down", Action.ON_DOWN),
                                              ("post up", Action.POST_UP),
                                              ("POST DOWN", Action.POST_DOWN)])
def test_every_rundynamic_action(text: str, action: Action) -> None:
    assert parse(f"RunDynamic lib:fn {text}\n").hooks[0].action is action


def test_rundynamic_needs_an_action() -> None:
    assert offending("RunDynamic lib:fn\nGroup = g\n") == (1, "Group")


def test_quoted_spread_and_retry_interval_needs_a_unit() -> None:
    assert parse("Spread = '4803@10.0.0.1'\n").spread == "4803@10.0.0.1"
    assert offending("SpreadRetryInterval = 10\n") == (0, "10")


def test_prefer_none_appends_each_time() -> None:
    assert parse("Prefer None\nPrefer None\n").prefer == (IPv4Address(0),) * 2


def test_notify_throttle_without_ping() -> None:
    (n,) = parse("Notify { eth0:10.0.0.0/30 throttle 4 }\n").notifications
    assert (n.throttle, n.ping, str(n.target.broadcast if n.target else "")) == (
        4, False, "10.0.0.3")


def test_address_fields_are_read_like_atoi_with_leading_zeros() -> None:
    (vif,) = parse(vifs("eth0:010.000.0.01/08n16")).vifs
    assert (str(vif.primary.address), vif.primary.prefix, vif.primary.hint_prefix) == (
        "10.0.0.1", 8, 16)

"""spread.conf grammar, directives, defaults, limits, errors and the configuration hash.

Facts are the reference's (spread-conf-and-cli.md), checked against the C source; hashes
and VIDs in §5.3/§6.2 were produced by the C daemon.
"""

from __future__ import annotations

import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spread.config import ConfigError, IfType, PortReuse, auto_vid, oaat, parse_config_text
from spread.config.alarm import Record, SetMask, SetOutput, SetPriority, SetTimestamp
from spread.config.hash import conf_hash
from spread.config.model import LAN_TIMEOUTS, WAN_TIMEOUTS
from spread.config.parse import parse_with_log

SEG = "Spread_Segment 192.0.2.255:4803 {\n\ta 192.0.2.1\n\tb 192.0.2.2\n}\n"


def fake_dns(name: str) -> list[tuple[int, bytes]]:
    table = {
        "hosta": [(4, socket.inet_pton(socket.AF_INET, "192.0.2.7"))],
        "dual": [(6, socket.inet_pton(socket.AF_INET6, "2001:db8::7")),
                 (4, socket.inet_pton(socket.AF_INET, "192.0.2.8"))],
        "v6only": [(6, socket.inet_pton(socket.AF_INET6, "2001:db8::9"))],
    }
    if name in table:
        return table[name]
    raise LookupError("Name or service not known")


def parse(text: str):
    return parse_config_text(text, "t.conf", resolver=fake_dns, hostname=lambda: "hostx")


def error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        parse(text)
    return e.value


def records(text: str) -> list[str]:
    res = parse_with_log(text, "t.conf", resolver=fake_dns, hostname=lambda: "hostx")
    return [e.text for e in res.log if isinstance(e, Record)]


# ---- hash and VIDs (reference §5.3, §6.2) ---------------------------------------------------
@pytest.mark.parametrize("name,vid", [
    ("localhost", 482711334), ("third", 3757509686), ("127.0.0.4", 2823216909),
    ("quoted name", 3117314266), ("d1", 1552775919), ("d2", 348480928), ("d3", 4014350958),
    ("me", 2301112302), ("averyveryverylongda", 1188318126)])
def test_auto_vid_is_the_c_daemons(name: str, vid: int) -> None:
    assert auto_vid(name) == vid


def test_reserved_vid_values_are_replaced_by_length_shifted(monkeypatch) -> None:
    import spread.config.hash as h

    monkeypatch.setattr(h, "oaat", lambda data: 0)
    assert h.auto_vid("abc") == 4 << 16
    monkeypatch.setattr(h, "oaat", lambda data: 0xFFFFFFFF)
    assert h.auto_vid("abc") == 4 << 16


def test_oaat_treats_high_bytes_as_signed_chars() -> None:
    assert oaat(b"\xe9\0") != oaat(b"\x69\0")  # sanity: the byte value matters
    assert auto_vid("é") == oaat("é".encode() + b"\0")


@pytest.mark.parametrize("text,value", [
    ("Spread_Segment 127.0.0.255:4803 { localhost 127.0.0.1 }", 970868126),
    ("Spread_Segment 127.0.0.255:4803 { localhost 127.0.0.1 }\nAcceleratedRing = true",
     2118251468),
    ("Spread_Segment 127.0.0.255:23400 { localhost 127.0.0.1 }", 3076562328),
    ("Spread_Segment [ff02::1:2:3]:5016 { me ::1 }", 920665657),
    ("Spread_Segment 127.0.0.255:5014 225.1.1.1 226.1.1.1 { localhost 127.0.0.1  "
     "averyveryverylongdaemonname 127.0.0.2 }", 1457441035),
    ("Spread_Segment 127.255.255.255:23100 { d1 127.0.0.1 }\n"
     "Spread_Segment 127.255.255.255:23110 { d2 127.0.0.1 }\n"
     "Spread_Segment 127.255.255.255:23120 { d3 127.0.0.1 }", 2999080862),
])
def test_configuration_hash_is_the_c_daemons(text: str, value: int) -> None:
    assert parse(text).conf_hash == value


def test_hash_string_has_the_documented_shape() -> None:
    c = parse("Spread_Segment 127.0.0.255:4803 { localhost 127.0.0.1 }")
    assert c.hash_text == ("Segment: port = 4803; [127.0.0.255]\n\t'localhost' [127.0.0.1] "
                           "[482711334]\n\nVersion: 5\nProtocol: Original Ring\n")
    assert conf_hash(c.hash_text) == c.conf_hash


def test_ipv6_addresses_hash_in_full_canonical_form() -> None:
    c = parse("Spread_Segment [ff02::1:2:3]:5016 { me ::1 }")
    assert "[ff02:0000:0000:0000:0000:0001:0002:0003]" in c.hash_text
    assert "[0000:0000:0000:0000:0000:0000:0000:0001]" in c.hash_text


def test_exclude_seg_addrs_anywhere_drops_segment_addresses_from_the_hash() -> None:
    a = parse("ExcludeSegAddrsFromHash = yes\n" + SEG)
    b = parse(SEG.replace("192.0.2.255", "239.1.1.1") + "ExcludeSegAddrsFromHash = TRUE")
    assert a.conf_hash == b.conf_hash
    assert a.hash_text.startswith("Segment: port = 4803;\n")


def test_things_outside_the_hash_do_not_change_it() -> None:
    base = parse(SEG).conf_hash
    other = parse(SEG + "Window = 300\nWideAreaNetwork = yes\nEventPriority = ERROR\n"
                  "DebugFlags = { ALL }\n").conf_hash
    assert base == other
    with_ifaces = parse(SEG.replace("a 192.0.2.1", "a 192.0.2.1 { D 192.0.2.1 }")).conf_hash
    assert with_ifaces == base


def test_absent_accelerated_ring_hashes_as_original_but_runs_accelerated() -> None:
    c = parse(SEG)
    assert "Protocol: Original Ring" in c.hash_text
    assert c.accelerated_ring is True  # one segment: LAN, so the accelerated protocol
    c2 = parse(SEG + "AcceleratedRing = no")
    assert c2.accelerated_ring is False and c2.conf_hash == c.conf_hash


# ---- grammar ----------------------------------------------------------------------------------
def test_segment_without_port_uses_4803_and_every_address_shares_the_port() -> None:
    c = parse("Spread_Segment 192.0.2.255 239.1.1.1 { a 192.0.2.1 }")
    seg = c.segments[0]
    assert seg.port == 4803 and [a.ip for a in seg.addresses] == ["192.0.2.255", "239.1.1.1"]
    assert c.daemons[0].port == 4803 and c.daemons[0].token_port == 4804


def test_port_zero_means_the_default_port() -> None:
    assert parse("Spread_Segment 192.0.2.255:0 { a 192.0.2.1 }").segments[0].port == 4803


def test_only_the_first_segment_address_may_carry_a_port() -> None:
    e = error("Spread_Segment 192.0.2.255:4803 239.1.1.1:4803 { a 192.0.2.1 }")
    assert e.original == "syntax error" and e.offending == "239.1.1.1:4803"


def test_name_then_address_on_following_lines_is_one_daemon() -> None:
    c = parse("Spread_Segment 192.0.2.255 {\n other3.my.com\n\n   192.0.2.13\n}")
    assert [(d.name, d.ip) for d in c.daemons] == [("other3.my.com", "192.0.2.13")]


def test_semicolon_vid_or_interfaces_separate_name_only_from_address_only() -> None:
    c = parse("Spread_Segment 192.0.2.255 { hosta ; 192.0.2.1 }")
    assert [(d.name, d.ip) for d in c.daemons] == [("hosta", "192.0.2.7"),
                                                   ("192.0.2.1", "192.0.2.1")]
    c = parse("Spread_Segment 192.0.2.255 { hosta VirtualID = 3 192.0.2.1 }")
    assert [d.name for d in c.daemons] == ["hosta", "192.0.2.1"]


def test_address_only_daemon_is_named_by_the_text_without_interface_suffix() -> None:
    c = parse("Spread_Segment [ff02::1]:4803 { fe80::1%lo }")
    assert c.daemons[0].name == "fe80::1"
    assert c.daemons[0].address.scope_id == 1


def test_name_only_daemon_takes_the_first_dns_address_of_the_active_family() -> None:
    c = parse("Spread_Segment [ff02::1] { dual }")
    assert c.daemons[0].ip == "2001:db8::7" and c.active_ip_version == 6
    c = parse("ActiveIPVersion = IPv4\nSpread_Segment 192.0.2.255 { dual }")
    assert c.daemons[0].ip == "192.0.2.8"


def test_names_are_cut_to_nineteen_bytes() -> None:
    c = parse("Spread_Segment 127.0.0.255 { averyveryverylongdaemonname 127.0.0.2 }")
    assert c.daemons[0].name == "averyveryverylongda"


def test_quoted_names_may_hold_blanks_and_reserved_words() -> None:
    c = parse('Spread_Segment 192.0.2.255 { "quoted name" 192.0.2.1 "INFO" 192.0.2.2 }')
    assert [d.name for d in c.daemons] == ["quoted name", "INFO"]


def test_reserved_words_cannot_be_unquoted_names() -> None:
    for word in ("INFO", "D", "yes", "auto", "Window"):
        assert error(f"Spread_Segment 192.0.2.255 {{ {word} 192.0.2.1 }}").original == \
            "syntax error"


def test_name_glued_to_semicolon_warns_and_keeps_the_semicolon() -> None:
    text = "Spread_Segment 192.0.2.255 { localhost; 192.0.2.1 }"
    assert parse(text).daemons[0].name == "localhost;"
    assert any("Daemon name ended with a semicolon!" in r for r in records(text))


def test_explicit_virtual_id_replaces_the_automatic_one() -> None:
    c = parse("Spread_Segment 192.0.2.255 { a 192.0.2.1 VirtualID = 17 b 192.0.2.2 }")
    assert [(d.vid, d.explicit_vid) for d in c.daemons] == [(17, True), (auto_vid("b"), False)]


def test_interface_lines_combine_letters_and_no_letter_means_all() -> None:
    c = parse("Spread_Segment 192.0.2.255 { a 192.0.2.1 {\n D C 192.0.2.1\n M 10.0.0.1\n"
              " 0.0.0.0\n} }")
    ifs = c.daemons[0].interfaces
    assert [(i.types, i.address.ip) for i in ifs] == [
        (IfType.DAEMON | IfType.CLIENT, "192.0.2.1"), (IfType.MONITOR, "10.0.0.1"),
        (IfType.ALL, "0.0.0.0")]
    assert c.daemons[0].has_interface_block


def test_daemon_without_interface_block_gets_the_implicit_any_interface() -> None:
    d = parse(SEG).daemons[0]
    assert d.interfaces[0].types == IfType.ALL | IfType.ANY and not d.has_interface_block


def test_unspecified_daemon_interface_satisfies_the_primary_address_rule() -> None:
    parse("Spread_Segment 192.0.2.255 { a 192.0.2.1 { D 0.0.0.0 } }")


def test_directives_may_come_before_between_and_after_segments() -> None:
    c = parse("Window = 100\n" + SEG + "PersonalWindow = 10\n"
              + SEG.replace("192.0.2.", "198.51.100.").replace("a ", "c ").replace("b ", "d ")
              + "MaxSessionMessages = 7")
    assert (c.window, c.personal_window, c.max_session_messages) == (100, 10, 7)
    assert len(c.segments) == 2 and [d.segment for d in c.daemons] == [0, 0, 1, 1]


def test_repeated_directive_last_one_wins() -> None:
    assert parse(SEG + "Window = 100\nWindow = 120").window == 120


# ---- directives and defaults ------------------------------------------------------------------
def test_defaults() -> None:
    c = parse(SEG)
    assert (c.window, c.personal_window, c.accelerated_window) == (160, 20, 15)
    assert c.max_session_messages == 1000 and c.dangerous_monitor is False
    assert c.port_reuse is PortReuse.AUTO and c.runtime_dir == "/var/run/spread"
    assert (c.daemon_user, c.daemon_group) == ("spread", "spread")
    assert c.auth_allowed == ("NULL",) and c.auth_required == ()
    assert c.access_control_policy == "PERMIT"
    assert c.wide_area_network is False and c.timeouts == LAN_TIMEOUTS
    assert c.logging.debug_flags == 0x111 and c.logging.priority == 2
    assert c.logging.timestamp_format is None and c.logging.log_file is None


def test_more_than_one_segment_means_wan_defaults_unless_said_otherwise() -> None:
    two = SEG + "Spread_Segment 198.51.100.255 { c 198.51.100.1 }"
    c = parse(two)
    assert c.wide_area_network and c.timeouts == WAN_TIMEOUTS and c.accelerated_ring is False
    c = parse(two + "\nWideAreaNetwork = no")
    assert not c.wide_area_network and c.timeouts == LAN_TIMEOUTS and c.accelerated_ring


def test_all_nine_timeouts_replace_the_defaults() -> None:
    names = ["Token", "Hurry", "Alive", "Join", "Rep", "Seg", "Gather", "Form", "Lookup"]
    text = SEG + "".join(f"{n}Timeout = {i + 1}\n" for i, n in enumerate(names))
    t = parse(text).timeouts
    assert (t.token, t.hurry, t.lookup) == (1, 2, 9)


def test_debug_flags_build_a_mask_left_to_right_from_none() -> None:
    c = parse(SEG + "DebugFlags = { ALL !DATA_LINK }")
    assert c.logging.debug_flags == 0xFFFFFFFD
    c = parse(SEG + "DebugFlags = { PRINT EXIT !EXIT GROUPS }")
    assert c.logging.debug_flags == 0x10 | 0x2000
    c = parse(SEG + "DebugFlags = { }")
    assert c.logging.debug_flags == 0


def test_debug_flags_log_the_new_mask_in_hex() -> None:
    assert "Set Alarm mask to: 111\n" in records(SEG + "DebugFlags = { PRINT EXIT CONFIGURATION }")


def test_event_priority_values() -> None:
    for word, n in [("pDEBUG", 1), ("INFO", 2), ("WARNING", 3), ("ERROR", 4),
                    ("CRITICAL", 5), ("FATAL", 6)]:
        assert parse(SEG + f"EventPriority = {word}").logging.priority == n


def test_timestamps_default_custom_precise_in_either_order() -> None:
    assert parse(SEG + "EventTimeStamp").logging.timestamp_format == "%m/%d/%y %H:%M:%S"
    c = parse(SEG + 'EventTimeStamp = "[%a %d %b %Y %H:%M:%S]"')
    assert c.logging.timestamp_format == "[%a %d %b %Y %H:%M:%S]"
    a = parse(SEG + "EventTimeStamp = %H:%M\nEventPreciseTimeStamp").logging
    b = parse(SEG + "EventPreciseTimeStamp\nEventTimeStamp = %H:%M").logging
    assert a == b and a.timestamp_format == "%H:%M %s" and a.precise_timestamp
    c = parse(SEG + "EventPreciseTimeStamp")
    assert c.logging.timestamp_format == "%m/%d/%y %H:%M:%S" and c.logging.precise_timestamp


def test_timestamp_format_is_cut_to_39_characters() -> None:
    fmt = "%H" + "x" * 50
    assert parse(SEG + f"EventTimeStamp = {fmt}").logging.timestamp_format == fmt[:39]


def test_event_log_file_expands_host_name() -> None:
    c = parse(SEG + "EventLogFile = /var/log/spread-%h-%H.log")
    assert c.logging.log_file == "/var/log/spread-hostx-hostx.log"


def test_logging_directives_take_effect_where_they_stand() -> None:
    res = parse_with_log("EventTimeStamp\n" + SEG + "EventLogFile = /x.log\n"
                         "EventPriority = ERROR\nDebugFlags = { ALL }", "t.conf")
    kinds = [type(e) for e in res.log]
    assert kinds[0] is SetTimestamp
    assert kinds.index(SetOutput) < kinds.index(SetPriority) < kinds.index(SetMask)


@pytest.mark.parametrize("value,state,line", [
    ("on", PortReuse.ON, "Setting SO_REUSEADDR to always on -- make sure Spread daemon host "
                         "is secured!\n"),
    ("off", PortReuse.OFF, "Setting SO_REUSEADDR to always off\n"),
    ("AUTO", PortReuse.AUTO, "Setting SO_REUSEADDR to auto\n")])
def test_socket_port_reuse(value: str, state: PortReuse, line: str) -> None:
    text = SEG + f"SocketPortReuse = {value}"
    assert parse(text).port_reuse is state and line in records(text)


def test_dangerous_monitor_and_its_messages() -> None:
    text = SEG + "DangerousMonitor = yes"
    assert parse(text).dangerous_monitor
    assert ("ENABLING Dangerous Monitor Commands! Make sure Spread network is secured\n"
            in records(text))
    assert "Disabling Dangerous Monitor Commands!\n" in records(SEG + "DangerousMonitor = no")


def test_runtime_dir_user_group_and_empty_values_ignored() -> None:
    text = SEG + 'RuntimeDir = /srv/spread\nDaemonUser = sp\nDaemonGroup = spg\nRuntimeDir = ""'
    c = parse(text)
    assert (c.runtime_dir, c.daemon_user, c.daemon_group) == ("/srv/spread", "sp", "spg")
    assert "set_param_if_valid: Ignored invalid runtime directory\n" in records(text)
    assert "Set user name to 'sp'\n" in records(text)


def test_user_longer_than_32_is_fatal() -> None:
    e = error(SEG + "DaemonUser = " + "u" * 33)
    assert e.original == "set_param_if_valid: value string too long"


def test_auth_methods_first_directive_drops_null_and_they_accumulate() -> None:
    c = parse(SEG + 'AllowedAuthMethods = IP\nRequiredAuthMethods = "NULL"')
    assert c.auth_allowed == ("IP",) and c.auth_required == ("NULL",)
    c = parse(SEG + 'AllowedAuthMethods = IP\nAllowedAuthMethods = NULL')
    assert c.auth_allowed == ("IP", "NULL")
    text = SEG + 'AllowedAuthMethods = "IP PWORD"'
    assert parse(text).auth_allowed == ("IP",)
    assert "Acm_auth_set_enabled: unknown auth name PWORD\n" in records(text)


def test_access_control_policy_permit_only() -> None:
    assert parse(SEG + "AccessControlPolicy = PERMIT").access_control_policy == "PERMIT"
    e = error(SEG + "AccessControlPolicy = FOO")
    assert e.original.startswith("Invalid Access Control Policy name.") and e.offending == "FOO"


def test_active_ip_version_constrains_daemons_and_segments() -> None:
    c = parse("ActiveIPVersion = IPv6\nSpread_Segment [ff02::1] { me ::1 }")
    assert c.active_ip_version == 6
    assert "Setting active IP version to 10\n" in records(
        "ActiveIPVersion = IPv6\nSpread_Segment [ff02::1] { me ::1 }")
    e = error("ActiveIPVersion = IPv6\n" + SEG)
    assert e.original == ("A daemon's address was of the wrong type!  It disagreed with "
                          "ActiveIPVersion!")
    e = error(SEG + "ActiveIPVersion = IPv6")
    assert e.original == ("Conf_set_active_ip_version: active IP version already differently "
                          "specified: 2 vs. 10") and not e.banner


def test_ignore_multicast_join_errors_and_accelerated_window() -> None:
    c = parse(SEG + "IgnoreMulticastJoinErrors = yes\nAcceleratedWindow = 0")
    assert c.ignore_multicast_join_errors and c.accelerated_window == 0


def test_ipv6_segment_that_is_not_multicast_only_warns() -> None:
    text = "Spread_Segment [2001:db8::ff]:4803 { me ::1 }"
    assert parse(text).segments[0].addresses[0].ip == "2001:db8::ff"
    assert any("IPv6 segment configured with a non-multicast segment address 2001:db8::ff!\n"
               in r for r in records(text))


def test_loopback_segment_warning_has_no_newline_so_the_next_line_is_glued() -> None:
    recs = records("Spread_Segment 127.0.0.255 { localhost 127.0.0.1 }")
    warn = next(r for r in recs if "loopback" in r)
    assert warn.endswith("Segment configured with a loopback address 127.0.0.255!")


def test_same_ip_is_fine_in_segments_with_different_ports() -> None:
    c = parse("Spread_Segment 127.255.255.255:23100 { d1 127.0.0.1 }\n"
              "Spread_Segment 127.255.255.255:23110 { d2 127.0.0.1 }")
    assert [d.port for d in c.daemons] == [23100, 23110]


# ---- refusals ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text,original,banner", [
    ("", "No segments specified!", True),
    ("Window = 10", "No segments specified!", True),
    ("Spread_Segment 192.0.2.255 { }", "Segment address 192.0.2.255 incompatible with "
     "ActiveIPVersion!", True),
    ("ActiveIPVersion = IPv4\nSpread_Segment 192.0.2.255 { }", "No daemons specified!", True),
    (SEG + "Window = 0", "Conf_set_window: Attempt to set window to non-positive (0)!", False),
    (SEG + "PersonalWindow = 0", "Conf_set_personal_window: Attempt to set personal window to "
     "non-positive (0)!", False),
    (SEG + "TokenTimeout = 0", "Conf_set_token_timeout: Non-positive timeout (0) specified!",
     False),
    (SEG + "LookupTimeout = 0", "Conf_set_lookup_timeout: Non-positive timeout (0) specified!",
     False),
    (SEG + "Window = 10\nPersonalWindow = 20", "PersonalWindow > Window!", True),
    (SEG + "AcceleratedRing = yes\nAcceleratedWindow = 21", "AcceleratedWindow > "
     "PersonalWindow!", True),
    (SEG + "ActiveIPVersion = ipv4", "Invalid ActiveIPVersion specified.  Value must be 'IPv4' "
     "or 'IPv6'", True),
    ("Spread_Segment 192.0.2.255 { a 192.0.2.1 a 192.0.2.2 }", "Daemon name (a) not unique! "
     "Already in use by daemon #0!", True),
    ("Spread_Segment 192.0.2.255 { a 192.0.2.1 b 192.0.2.1 }", "Daemon's (b) address "
     "(192.0.2.1) not unique! Already in use by daemon #0 (a)!", True),
    ("Spread_Segment 192.0.2.255 { a 192.0.2.1 VirtualID = 5 b 192.0.2.2 VirtualID = 5 }",
     "The virtual ID '5' of 'b' is already in use by 'a'!  You will probably need to explicitly"
     " reconfigure the daemons' virtual IDs so that they don't conflict.", False),
    ("Spread_Segment 192.0.2.255 { a 192.0.2.1 VirtualID = 0 }", "Virtual IDs must be "
     "specified as an integer greater than zero!", True),
    ("Spread_Segment 192.0.2.255 { a 192.0.2.1 { } }", "Interfaces section declared but no "
     "actual interfaces specified!", True),
    ("Spread_Segment 192.0.2.255 { a 192.0.2.1 { C 192.0.2.1 } }", "Interface spec doesn't "
     "include a daemon entry for the daemon's primary address!", True),
    ("Spread_Segment 192.0.2.255 { a 239.1.1.1 }", "A daemon's address can't be a multicast "
     "address!", True),
    ("Spread_Segment 192.0.2.255 { a 0.0.0.0 }", "A daemon's address must not be the "
     "unspecified address!", True),
    ('Spread_Segment 192.0.2.255 { "" 192.0.2.1 }', "Zero length daemon name!", True),
    ("Spread_Segment 192.0.2.255 { nosuchhost }", "Name or service not known", True),
    ("ActiveIPVersion = IPv4\nSpread_Segment 192.0.2.255 { v6only }", "Couldn't find an "
     "appropriate address based on daemon name! Check that your ActiveIPVersion and DNS "
     "entries match or explicitly configure the address to use!", True),
    ("Spread_Segment 0.0.0.0 { a 192.0.2.1 }", "Segment configured with an unspecified "
     "segment address 0.0.0.0!", True),
    ("Spread_Segment 192.0.2.255:99999 { a 192.0.2.1 }", "parse_ip: Port out of valid range!",
     True),
    ("Spread_Segment 192.0.2.255 1.1.1.1 1.1.1.2 1.1.1.3 1.1.1.4 1.1.1.5 { a 192.0.2.1 }",
     "Too many segment addresses specified!", True),
    ("Spread_Segment 192.0.2.255 { a 192.0.2.1 {" + " D 192.0.2.1" * 11 + " } }",
     "Too many interfaces configured on a daemon!", True),
    (SEG + "DangerousMonitor = on", "syntax error", True),
    (SEG + "Window=160", "syntax error", True),
    (SEG + "Foo = 1", "syntax error", True),
    ("Spread_Segment 192.0.2.255 {\n a 192.0.2.1\n", "syntax error", True),
])
def test_refusals_carry_the_originals_message(text: str, original: str, banner: bool) -> None:
    e = error(text)
    assert e.original == original and e.banner is banner
    shown = str(e)
    assert original in shown and "t.conf" in shown and ", expected " in shown
    if banner:
        assert shown.startswith("----------- Parse Error -------------------\n")


def test_too_many_segments_daemons_per_ring() -> None:
    segs = "".join(f"Spread_Segment 10.{i}.0.255 {{ d{i} 10.{i}.0.1 }}\n" for i in range(21))
    assert error(segs).original == "Too many segments configured!"
    # both limits are 128, and the ring-wide check comes first, so it is the one reported
    many = " ".join(f"d{i} 10.0.{i // 200}.{i % 200 + 1}" for i in range(129))
    assert error(f"Spread_Segment 10.0.0.255 {{ {many} }}").original == \
        "Too many daemons configured!"
    ring = "".join(f"Spread_Segment 10.{s}.0.255 {{ " + " ".join(
        f"d{s}x{i} 10.{s}.0.{i + 1}" for i in range(30)) + " }\n" for s in range(5))
    assert error(ring).original == "Too many daemons configured!"


def test_lower_case_keyword_reports_no_segments_like_the_original() -> None:
    e = error("spread_segment 192.0.2.255 { a 192.0.2.1 }")
    assert e.original == "No segments specified!" and e.offending == "spread_segment"
    assert "keywords are case-sensitive: Spread_Segment" in str(e)


def test_trailing_garbage_is_reported_after_the_hash_is_computed() -> None:
    lines = records_until_error(SEG + "Foo = 1")
    assert any(r.startswith("Hash value for this configuration is:") for r in lines)


def records_until_error(text: str) -> list[str]:
    with pytest.raises(ConfigError) as e:
        parse(text)
    return [r.text for r in e.value.log if isinstance(r, Record)]


def test_error_location_points_at_the_culprit_with_a_caret() -> None:
    e = error("Spread_Segment 192.0.2.255 {\n\ta 192.0.2.1\n\ta 192.0.2.2\n}\n")
    assert (e.line, e.column) == (3, 2)
    assert str(e).endswith("t.conf:3:2: daemon name 'a', expected a name no other daemon has "
                           "(daemon #0, line 2, has it; names are cut to 19 bytes)\n"
                           "\ta 192.0.2.2\n\t^")


def test_banner_line_is_the_human_line_of_the_offending_token() -> None:
    e = error("Spread_Segment 192.0.2.255 {\n a 192.0.2.1\n}\nDangerousMonitor = on\n")
    assert e.banner_line == 4 and e.offending == "on"
    e = error("Spread_Segment 192.0.2.255 {\n a 192.0.2.1\n")
    assert e.banner_line == 2 and e.offending == ""  # end of file: the last line


def test_syntax_error_says_what_was_expected() -> None:
    e = error(SEG + "DangerousMonitor = on")
    assert "'on', expected a boolean (true, yes, false, no)" in str(e)
    e = error(SEG + "Window=160")
    assert "'Window=160' ('=' needs blanks around it)" in str(e)


# ---- robustness -----------------------------------------------------------------------------
WORDS = ["Spread_Segment", "{", "}", "=", ";", "!", "#c\n", "\n", " ", "\t", "Window",
         "PersonalWindow", "TokenTimeout", "DebugFlags", "ALL", "EXIT", "EventPriority",
         "INFO", "EventTimeStamp", "EventPreciseTimeStamp", "EventLogFile", "VirtualID",
         "D", "C", "M", "yes", "no", "on", "auto", "192.0.2.255", "192.0.2.1", "192.0.2.2",
         "127.0.0.1:4803", "[ff02::1]:4803", "::1", "0", "5", "160", "999999999", "a", "b",
         "hosta", '"q n"', "'x'", "[", "]", "ActiveIPVersion", "IPv4", "IPv6",
         "AccessControlPolicy", "PERMIT", "AcceleratedRing", "AcceleratedWindow", "999.1.1.1",
         "1.2.3.4:99999",
         "SocketPortReuse", "AllowedAuthMethods", "RuntimeDir", '""', "\v", "0.0.0.0",
         "239.1.1.1", "ExcludeSegAddrsFromHash", "WideAreaNetwork", "\"open"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(WORDS), max_size=40).map(" ".join))
def test_any_token_soup_parses_or_raises_only_config_error(text: str) -> None:
    try:
        parse(text)
    except ConfigError as e:
        assert str(e)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_real_configurations_parse_or_raise_only_config_error(data) -> None:
    base = SEG + ("EventTimeStamp\nDebugFlags = { ALL !DATA_LINK }\nWindow = 100\n"
                  "Spread_Segment [ff02::1]:5000 { me ::1 { D ::1 } }\n")
    pos = data.draw(st.integers(0, len(base)))
    cut = data.draw(st.integers(0, 5))
    insert = data.draw(st.text(alphabet=" \n{}=;!#[]\"'aZ09.:%\v\0", max_size=6))
    text = base[:pos] + insert + base[pos + cut :]
    try:
        parse(text)
    except ConfigError as e:
        assert str(e)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_text_never_raises_anything_but_config_error(text: str) -> None:
    try:
        parse(text)
    except ConfigError:
        pass


def test_address_looking_words_that_are_not_addresses_get_a_hint() -> None:
    assert "'10.0.0.1;' is one word: put a blank before ';'" in str(
        error("Spread_Segment 192.0.2.255 { a 10.0.0.1; }"))
    assert "the next word '999.1.1.1' is not a valid IP address" in str(
        error("Spread_Segment 192.0.2.255 { a 999.1.1.1 }"))
    assert "'999.2.3.255' (not a valid IP address), expected an IP address" in str(
        error("Spread_Segment 999.2.3.255 { a 192.0.2.1 }"))


def test_conf_print_of_a_membership_keeps_every_segment_and_only_members_in_ring_order() -> None:
    from spread.config.report import conf_print

    text = (
        "Spread_Segment 10.0.0.255:4803 {\n\ta 10.0.0.1\n\tb 10.0.0.2\n\tc 10.0.0.3\n}\n"
        "Spread_Segment 10.0.1.255:4803 {\n\td 10.0.1.1\n}\n"
    )
    cfg = parse_config_text(text)
    vid = {d.name: d.vid for d in cfg.daemons}
    lines = "".join(r.text for r in conf_print(cfg.segments, "b", [vid["c"], vid["b"]]))
    assert "Num Segments 2\n\t2\t[10.0.0.255]:4803\n\t\tc    " in lines
    assert lines.index("\t\tc ") < lines.index("\t\tb ")  # ring order, not file order
    assert "\t0\t[10.0.1.255]:4803\n====================\n" in lines  # empty, still listed

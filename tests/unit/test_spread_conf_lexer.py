"""The spread.conf scanner behaves like the original's flex rules (reference §2), row by row."""

from __future__ import annotations

import pytest

from spread.config.lexer import LexError, tokenize


def kinds(text: str) -> list[tuple[str, str]]:
    return [(t.kind, t.text) for t in tokenize(text)]


def test_comments_run_to_end_of_line_anywhere() -> None:
    assert kinds("Window # = 5 }\n= 3#x") == [
        ("NUMKEY", "Window"), ("EQUALS", "="), ("NUMBER", "3")]


def test_blanks_and_newlines_separate_but_vertical_tab_and_formfeed_are_dropped() -> None:
    assert kinds("a\tb\r\nc\vd\fe") == [
        ("STRING", "a"), ("STRING", "b"), ("STRING", "c"), ("STRING", "d"), ("STRING", "e")]


def test_single_character_punctuation() -> None:
    assert kinds("{ } = : ;") == [("OPENBRACE", "{"), ("CLOSEBRACE", "}"), ("EQUALS", "="),
                                  ("COLON", ":"), ("SEMICOLON", ";")]


def test_longest_match_makes_glued_equals_one_string() -> None:
    assert kinds("Window=160") == [("STRING", "Window=160")]
    assert kinds("=160") == [("STRING", "=160")]


def test_bang_needs_something_after_it_on_the_line() -> None:
    assert kinds("!DATA_LINK }") == [("BANG", "!"), ("ALARMBIT", "DATA_LINK"),
                                     ("CLOSEBRACE", "}")]
    assert kinds("! x") == [("BANG", "!"), ("STRING", "x")]
    assert kinds("!\nx") == [("STRING", "!"), ("STRING", "x")]
    assert kinds("!") == [("STRING", "!")]


def test_keywords_are_case_sensitive_and_whole_tokens() -> None:
    assert kinds("Spread_Segment spread_segment WindowX Window") == [
        ("SEGMENT", "Spread_Segment"), ("STRING", "spread_segment"), ("STRING", "WindowX"),
        ("NUMKEY", "Window")]


@pytest.mark.parametrize("word,value", [("true", True), ("TRUE", True), ("yEs", True),
                                        ("false", False), ("No", False)])
def test_booleans_are_case_insensitive(word: str, value: bool) -> None:
    (tok,) = tokenize(word)
    assert (tok.kind, tok.value) == ("SP_BOOL", value)


@pytest.mark.parametrize("word,value", [("on", 1), ("OFF", 0), ("Auto", 2)])
def test_trivals_are_case_insensitive_and_not_booleans(word: str, value: int) -> None:
    (tok,) = tokenize(word)
    assert (tok.kind, tok.value) == ("SP_TRIVAL", value)


def test_debug_flag_names_carry_their_masks() -> None:
    toks = tokenize("ALL EXIT CONFIGURATION SECURITY NONE all")
    assert [(t.kind, t.value) for t in toks[:5]] == [
        ("ALARMBIT", 0xFFFFFFFF), ("ALARMBIT", 1), ("ALARMBIT", 0x100),
        ("ALARMBIT", 0x800000), ("ALARMBIT", 0)]
    assert toks[5].kind == "STRING"


def test_interface_letters_are_single_tokens_only() -> None:
    assert kinds("M C D DC") == [("IMONITOR", "M"), ("ICLIENT", "C"), ("IDAEMON", "D"),
                                 ("STRING", "DC")]


def test_priority_names_including_lower_case_p_debug() -> None:
    toks = tokenize("pDEBUG INFO WARNING ERROR CRITICAL FATAL DEBUG")
    assert [(t.kind, t.value) for t in toks] == [
        ("PRIO", 1), ("PRIO", 2), ("PRIO", 3), ("PRIO", 4), ("PRIO", 5), ("PRIO", 6),
        ("ALARMBIT", 0x1000)]


def test_ipv4_address_and_address_with_port() -> None:
    a, b = tokenize("192.0.2.1 192.0.2.255:4803")
    assert (a.kind, a.value.ip) == ("IPADDR", "192.0.2.1")
    assert (b.kind, b.value.ip, b.port) == ("IPPORT", "192.0.2.255", 4803)


def test_malformed_ipv4_falls_back_to_string_with_the_original_warning() -> None:
    warnings: list[tuple[str, str]] = []
    toks = tokenize("999.1.1.1", lambda msg, lx: warnings.append((msg, lx.text)))
    assert [(t.kind, t.text) for t in toks] == [("STRING", "999.1.1.1")]
    assert warnings == [("parse_ip: Potentially malformed IP address scanned!", "999.1.1.1")]


def test_port_out_of_range_is_fatal_even_before_the_address_is_checked() -> None:
    with pytest.raises(LexError, match="Port out of valid range"):
        tokenize("127.0.0.255:99999")
    with pytest.raises(LexError):
        tokenize("[ff02::1]:70000")


def test_six_digit_port_is_no_address_at_all() -> None:
    assert kinds("1.2.3.4:123456") == [("STRING", "1.2.3.4:123456")]


@pytest.mark.parametrize("text,ip", [("::1", "::1"), ("ff02::1:2:3", "ff02::1:2:3"),
                                     ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"), ("::", "::"),
                                     ("fe80::1%lo", "fe80::1")])
def test_ipv6_addresses(text: str, ip: str) -> None:
    (tok,) = tokenize(text)
    assert (tok.kind, tok.value.ip) == ("IPADDR", ip)


def test_ipv6_interface_suffix_gives_scope_but_stays_out_of_the_address() -> None:
    (tok,) = tokenize("fe80::1%lo")
    assert tok.value.scope_name == "lo" and tok.value.scope_id == 1  # lo is index 1


def test_ipv6_port_needs_brackets() -> None:
    (tok,) = tokenize("[ff02::1:2:3]:5016")
    assert (tok.kind, tok.value.ip, tok.port) == ("IPPORT", "ff02::1:2:3", 5016)


def test_embedded_ipv4_form_is_a_string() -> None:
    assert kinds("::ffff:1.2.3.4") == [("STRING", "::ffff:1.2.3.4")]


def test_stray_brackets_are_ignored() -> None:
    toks = tokenize("[ff02::1] [x]")
    assert [(t.kind, t.text) for t in toks] == [("IPADDR", "ff02::1"), ("STRING", "x")]


def test_numbers_have_at_most_nine_digits() -> None:
    assert kinds("123456789 1234567890") == [("NUMBER", "123456789"),
                                             ("STRING", "1234567890")]


def test_quoted_strings_drop_quotes_keep_everything_else_and_may_span_lines() -> None:
    a, b, c = tokenize("\"a b#{}\" 'x\ny' next")
    assert (a.kind, a.value) == ("STRING", "a b#{}")
    assert (b.kind, b.value) == ("STRING", "x\ny")
    # newlines inside quotes: the original's counter skips them, human lines do not
    assert (c.line, c.orig_line) == (2, 0)


def test_longer_unquoted_string_beats_a_quoted_prefix() -> None:
    assert kinds('"ab"cd "ab"') == [("STRING", '"ab"cd'), ("STRING", '"ab"')]
    assert [t.value for t in tokenize('"ab"cd "ab"')] == ['"ab"cd', "ab"]


def test_address_glued_to_semicolon_is_a_string_and_double_semicolon_too() -> None:
    assert kinds("1.2.3.4; ;; ;") == [("STRING", "1.2.3.4;"), ("STRING", ";;"),
                                      ("SEMICOLON", ";")]


def test_positions_are_one_based_lines_and_columns() -> None:
    toks = tokenize("a\n\tbb c")
    assert [(t.line, t.column, t.orig_line) for t in toks] == [(1, 1, 0), (2, 2, 1), (2, 5, 1)]

//! Text that one party chose and another party's screen shows: an operator's display name
//! and organisation (from the relay's accounts, an LDAP directory, a certificate on the wire)
//! shown in the customer's terminal and on the banner. Whoever controls such a string must not
//! be able to forge what the reader sees: no terminal escape sequences (colours, cursor moves,
//! clearing the screen, window titles), no control characters or line breaks (a fake second
//! line such as "Verification code: …"), no bidirectional overrides (text that reads
//! differently from how it is stored), and no unbounded length.
//!
//! [`display_safe`] is applied where such strings enter (the relay, before it signs a
//! certificate) and again where they are shown (the agent), so a string that slipped past one
//! is still cleaned by the other.

/// The longest display name or organisation, in characters.
pub const MAX_DISPLAY_CHARS: usize = 64;

/// Bidirectional embedding, override and isolate controls (U+202A–U+202E, U+2066–U+2069) and
/// the marks (U+200E, U+200F, U+061C): they reorder what the reader sees.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Invisible characters that make two different strings look the same (zero-width space and
/// joiners, word joiner and the invisible operators, the deprecated format characters,
/// byte-order mark, soft hyphen, interlinear annotation, tag characters).
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200D}'
            | '\u{2060}'..='\u{2064}'
            | '\u{206A}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{00AD}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

/// `s` made safe to show: escape sequences removed whole (CSI `ESC [ … final`, OSC
/// `ESC ] … BEL` or `ESC \`, other `ESC x` pairs, and their 8-bit C1 forms), every other
/// control character, bidirectional control and invisible character removed, runs of white
/// space (line breaks and tabs included) folded into one space, trimmed, and cut to
/// `max_chars` characters (the last three then being "...").
pub fn display_safe(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max_chars * 4));
    let mut chars = s.chars().peekable();
    let mut pending_space = false;
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => skip_escape(&mut chars),
            // C1 CSI and OSC / DCS / SOS / PM / APC: the 8-bit forms of the same sequences.
            '\u{9b}' => skip_csi(&mut chars),
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            c if c.is_whitespace() => pending_space = !out.is_empty(),
            c if c.is_control() || is_bidi_control(c) || is_invisible(c) => {}
            c => {
                if pending_space {
                    out.push(' ');
                    pending_space = false;
                }
                out.push(c);
            }
        }
    }
    cut(out, max_chars)
}

/// After ESC: a CSI, a string sequence (OSC, DCS, SOS, PM, APC) or a two-character escape.
fn skip_escape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    match chars.next() {
        Some('[') => skip_csi(chars),
        Some(']' | 'P' | 'X' | '^' | '_') => skip_string(chars),
        // ESC followed by intermediates (0x20–0x2F) then a final byte: e.g. ESC ( B.
        Some(c) if ('\u{20}'..='\u{2f}').contains(&c) => {
            while let Some(&n) = chars.peek() {
                chars.next();
                if !('\u{20}'..='\u{2f}').contains(&n) {
                    break;
                }
            }
        }
        _ => {}
    }
}

/// A CSI's parameters and intermediates up to its final byte (0x40–0x7E).
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for c in chars.by_ref() {
        if ('\u{40}'..='\u{7e}').contains(&c) {
            break;
        }
    }
}

/// A string sequence up to its terminator: BEL, ST (`ESC \`) or the 8-bit ST.
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => break,
            '\u{1b}' => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                break;
            }
            _ => {}
        }
    }
}

/// Cuts `s` (already trimmed) to `max` characters, ending in "..." when cut.
fn cut(s: String, max: usize) -> String {
    if s.chars().count() <= max {
        return s;
    }
    let keep = max.saturating_sub(3);
    let mut cut: String = s.chars().take(keep).collect();
    cut.truncate(cut.trim_end().len());
    cut.push_str("...");
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn safe(s: &str) -> String {
        display_safe(s, MAX_DISPLAY_CHARS)
    }

    #[test]
    fn ordinary_names_pass_unchanged() {
        for s in [
            "Alice Example",
            "Zoë Ørsted-Müller",
            "李小龍",
            "O'Brien & Sons, Ltd.",
        ] {
            assert_eq!(safe(s), s);
        }
    }

    #[test]
    fn escape_sequences_are_removed_whole() {
        assert_eq!(safe("\u{1b}[2J\u{1b}[1;31mAlice\u{1b}[0m"), "Alice");
        assert_eq!(safe("Bob\u{1b}]0;pwned\u{7} Smith"), "Bob Smith");
        assert_eq!(safe("Bob\u{1b}]8;;http://x\u{1b}\\link"), "Boblink");
        assert_eq!(safe("a\u{9b}31mb"), "ab");
        assert_eq!(safe("a\u{1b}(Bb"), "ab");
        assert_eq!(safe("\u{1b}"), "");
        assert_eq!(
            safe("x\u{1b}[999999"),
            "x",
            "an unterminated CSI eats the rest"
        );
    }

    #[test]
    fn line_breaks_and_controls_cannot_fake_a_line() {
        let forged = "Dana\nVerification code: 1234 5678\r\n";
        let out = safe(forged);
        assert!(!out.contains('\n') && !out.contains('\r'), "{out:?}");
        assert_eq!(out, "Dana Verification code: 1234 5678");
        assert_eq!(safe("a\u{0}b\u{7}c\u{8}d\u{7f}e"), "abcde");
        assert_eq!(safe("  many   \t spaces  "), "many spaces");
    }

    #[test]
    fn bidi_overrides_and_invisible_characters_are_removed() {
        assert_eq!(safe("evil\u{202E}gnp.exe"), "evilgnp.exe");
        assert_eq!(safe("a\u{2066}b\u{2069}c\u{200B}d\u{FEFF}"), "abcd");
        assert_eq!(safe("a\u{2062}b\u{206F}c\u{FFF9}d\u{E0041}"), "abcd");
    }

    #[test]
    fn long_names_are_cut() {
        let long = "x".repeat(500);
        let out = safe(&long);
        assert_eq!(out.chars().count(), MAX_DISPLAY_CHARS);
        assert!(out.ends_with("..."));
        assert_eq!(display_safe("abcdef", 5), "ab...");
        assert_eq!(display_safe("abcde", 5), "abcde");
    }
}

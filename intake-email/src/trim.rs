//! Quoted history and signatures, trimmed for display. The original stays in the raw message.

use std::sync::OnceLock;

use regex::Regex;

fn quote_header() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?ix)^\s*(
                on\s.{4,300}\swrote:\s*$                          # Gmail, Apple Mail, Thunderbird (en)
              | am\s.{4,300}\sschrieb\s?.{0,200}:\s*$              # de
              | le\s.{4,300}\sa\s[ée]crit\s?:\s*$                  # fr
              | el\s.{4,300}\sescribi[óo]:\s*$                     # es
              | op\s.{4,300}\sschreef\s?.{0,200}:\s*$              # nl
              | il\s.{4,300}\sha\sscritto:\s*$                     # it
              | \d{4}年\d{1,2}月\d{1,2}日.{0,200}:\s*$              # ja (Gmail)
              | -{2,}\s*original\s+message\s*-{2,}\s*$           # Outlook (en)
              | -{2,}\s*urspr[üu]ngliche\s+nachricht\s*-{2,}\s*$ # Outlook (de)
              | _{20,}\s*$                                        # Outlook on the web's rule
            )",
        )
        .unwrap_or_else(|_| unreachable!())
    })
}

/// Outlook's header block: `From:` followed within two lines by `Sent:`/`Date:` (any of the
/// languages' labels).
fn outlook_block(lines: &[&str], at: usize) -> bool {
    let is = |l: &str, labels: &[&str]| {
        let l = l.trim_start_matches('*').trim().to_lowercase();
        labels.iter().any(|p| l.starts_with(p))
    };
    is(lines[at], &["from:", "von:", "de:", "van:", "da:"])
        && lines[at + 1..].iter().take(3).any(|l| {
            is(
                l,
                &["sent:", "date:", "gesendet:", "envoyé :", "envoyé:", "enviado:", "verzonden:", "inviato:"],
            )
        })
}

const MOBILE_SIGNATURES: &[&str] = &[
    "sent from my iphone",
    "sent from my ipad",
    "sent from my android",
    "get outlook for ios",
    "get outlook for android",
    "von meinem iphone gesendet",
    "envoyé de mon iphone",
    "sent from mail for windows",
];

/// Cuts a plain-text body at the first quote header, `-- ` signature delimiter or Outlook header
/// block, drops a trailing block of `>` lines and a mobile signature. Returns the text unchanged
/// if trimming would leave nothing.
pub fn trim_text(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let lines: Vec<&str> = text.lines().collect();
    let mut end = lines.len();
    for (i, line) in lines.iter().enumerate() {
        // A header wrapped over two lines ("On Mon, 2 Mar 2026, Maria <m@x>\nwrote:").
        let joined = lines.get(i + 1).map(|next| format!("{line} {next}"));
        let wrapped =
            joined.as_deref().is_some_and(|j| quote_header().is_match(j) && next_is_quote(&lines, i + 2));
        if *line == "-- "
            || *line == "--"
            || quote_header().is_match(line)
            || wrapped
            || outlook_block(&lines, i)
        {
            end = i;
            break;
        }
    }
    let mut kept: Vec<&str> = lines[..end].to_vec();
    while kept.last().is_some_and(|l| l.trim().is_empty() || l.trim_start().starts_with('>')) {
        kept.pop();
    }
    while kept.last().is_some_and(|l| {
        let l = l.trim().to_lowercase();
        l.is_empty() || MOBILE_SIGNATURES.iter().any(|s| l.starts_with(s))
    }) {
        kept.pop();
    }
    let trimmed = kept.join("\n").trim().to_string();
    if trimmed.is_empty() { text.trim().to_string() } else { trimmed }
}

fn next_is_quote(lines: &[&str], at: usize) -> bool {
    lines[at.min(lines.len())..]
        .iter()
        .find(|l| !l.trim().is_empty())
        .is_none_or(|l| l.trim_start().starts_with('>'))
}

/// Where each mail program starts the quoted history in HTML.
const HTML_QUOTE_MARKERS: &[&str] = &[
    r#"<div class="gmail_quote"#,
    r#"<blockquote class="gmail_quote"#,
    r#"<div class="moz-cite-prefix"#,
    r#"<blockquote type="cite"#,
    r#"<div id="divRplyFwdMsg"#,
    r#"<div id="appendonsend"#,
    r#"<hr id="stopSpelling"#,
    r#"<div name="messageReplySection"#,
    r#"<div class="yahoo_quoted"#,
    r#"<div style="border:none;border-top:solid #E1E1E1"#,
    r#"<div style="border:none;border-top:solid #B5C4DF"#,
    "-----Original Message-----",
];

/// Cuts an HTML body at the first quote marker. The result may have unclosed tags; the core's
/// sanitiser closes them. Returns the HTML unchanged if nothing but markup would be left.
pub fn trim_html(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let cut = HTML_QUOTE_MARKERS.iter().filter_map(|m| lower.find(&m.to_ascii_lowercase())).min();
    match cut {
        Some(at) if has_text(&html[..at]) => html[..at].to_string(),
        _ => html.to_string(),
    }
}

fn has_text(html: &str) -> bool {
    !tandem_core::conversation::html_to_text(&tandem_core::conversation::sanitize_html(html))
        .trim()
        .is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts() {
        for (input, expected) in [
            ("Thanks!\n\nOn Mon, 2 Mar 2026 at 09:00, IT desk <it@desk.example> wrote:\n> old", "Thanks!"),
            ("Danke\n\nAm 02.03.2026 um 09:00 schrieb IT desk <it@desk.example>:\n> alt", "Danke"),
            ("Merci\n\nLe lun. 2 mars 2026 à 09:00, IT desk <it@desk.example> a écrit :\n> x", "Merci"),
            ("Fixed, thanks.\n\n-----Original Message-----\nFrom: IT\nSent: Monday", "Fixed, thanks."),
            ("Yes.\n\nFrom: IT desk <it@desk.example>\nSent: Monday, March 2, 2026 9:00 AM\nTo: Ana", "Yes."),
            ("Hi\n\n-- \nMaria Silva\nClub Lisbon", "Hi"),
            ("Works now\n\nSent from my iPhone", "Works now"),
            ("Top\n> quoted\n> more", "Top"),
            ("Inline answer\n> question?\nanswer\n", "Inline answer\n> question?\nanswer"),
            ("> only a quote", "> only a quote"),
            (
                "On Mon, 2 Mar 2026, Maria <m@x.example>\nwrote:\n> old",
                "On Mon, 2 Mar 2026, Maria <m@x.example>\nwrote:\n> old",
            ),
            ("ok\nOn Mon, 2 Mar 2026, Maria <m@x.example>\nwrote:\n> old", "ok"),
        ] {
            assert_eq!(trim_text(input), expected, "{input:?}");
        }
    }

    #[test]
    fn htmls() {
        let gmail = r#"<div dir="ltr">Thanks!</div><br><div class="gmail_quote"><div>On Mon wrote:</div><blockquote>old</blockquote></div>"#;
        assert_eq!(trim_html(gmail), r#"<div dir="ltr">Thanks!</div><br>"#);
        let only_quote = r#"<blockquote type="cite">old</blockquote>"#;
        assert_eq!(trim_html(only_quote), only_quote);
    }
}

//! Host names that servers announce about themselves.
//!
//! The relay tests need the target's name (`{H}`). The 220 greeting and the
//! EHLO reply usually start with it (`220 mx.example.org ESMTP Postfix`), but
//! servers also put words like `ESMTP`, `localhost` or an address literal there.
//! Only a syntactically valid, fully qualified domain name is taken.

/// A fully qualified domain name per RFC 1035 §2.3.1 (letters, digits, hyphens;
/// labels of 1-63 characters; at least two labels; a top-level label that is
/// not all digits). Returns the name in lower case.
pub fn fqdn(word: &str) -> Option<String> {
    let name = word.trim_end_matches('.');
    if name.is_empty() || name.len() > 253 {
        return None;
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return None;
    }
    for label in &labels {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return None;
        }
    }
    let tld = labels[labels.len() - 1];
    if tld.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(name.to_ascii_lowercase())
}

/// The host name a server announces as the first word of a greeting or EHLO reply.
pub fn announced(text: &str) -> Option<String> {
    text.split_whitespace().next().and_then(fqdn)
}

/// The mail domain guessed from a host name: drop the first label when at
/// least three remain (`mx1.example.org` → `example.org`), else the name itself.
pub fn mail_domain(host: &str) -> String {
    match host.split_once('.') {
        Some((_, rest)) if rest.contains('.') => rest.to_string(),
        _ => host.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_real_names() {
        assert_eq!(
            announced("mx.example.org ESMTP Postfix (Debian/GNU)").as_deref(),
            Some("mx.example.org")
        );
        assert_eq!(
            announced("MAIL.Example.COM. Microsoft ESMTP MAIL Service").as_deref(),
            Some("mail.example.com")
        );
    }

    #[test]
    fn refuses_words_and_literals() {
        for bad in [
            "ESMTP ready",
            "localhost ESMTP",
            "[192.0.2.1] ready",
            "192.0.2.1 ready",
            "",
            "-bad.example x",
            "a..b x",
            "host.123 x",
        ] {
            assert_eq!(announced(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn mail_domain_drops_the_host_label() {
        assert_eq!(mail_domain("mx1.example.org"), "example.org");
        assert_eq!(mail_domain("example.org"), "example.org");
        assert_eq!(mail_domain("a.b.c.example"), "b.c.example");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            if let Some(name) = announced(&s) {
                proptest::prop_assert!(name.contains('.'));
                proptest::prop_assert!(!name.contains(char::is_whitespace));
            }
        }
    }
}

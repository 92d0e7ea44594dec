//! The little XML that keystead reads: STS's AssumeRoleWithWebIdentity
//! result and the XML error bodies of the Query protocol (which moto also
//! returns for signature failures).
//!
//! Those documents are flat and machine-written, so finding an element by
//! name is enough. Namespaces, attributes on the wanted element, comments
//! and CDATA sections are not handled.

/// Returns the raw text between `<name>` (or `<name attr=...>`) and
/// `</name>`, for the first such element.
pub(crate) fn element_text<'a>(document: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}");
    let close = format!("</{name}>");
    let mut search_from = 0;
    while let Some(found) = document[search_from..].find(&open) {
        let tag_start = search_from + found;
        let after_name = tag_start + open.len();
        let rest = &document[after_name..];
        // `<Code>` must not match `<CodeExtra>`: the name ends at `>` or
        // whitespace.
        match rest.chars().next() {
            Some('>') | Some(' ') | Some('\t') | Some('\n') | Some('\r') => {
                let content_start = after_name + rest.find('>')? + 1;
                let content_end = content_start + document[content_start..].find(&close)?;
                return Some(&document[content_start..content_end]);
            }
            _ => search_from = after_name,
        }
    }
    None
}

/// Replaces XML's predefined entities and numeric character references.
/// Returns `None` for an unknown or malformed entity.
pub(crate) fn unescape(text: &str) -> Option<String> {
    // Unescaping never makes text longer, so the buffer is never
    // reallocated; callers decode secrets with this.
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let semicolon = after.find(';')?;
        let entity = &after[..semicolon];
        let decoded = match entity {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = entity.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()?
                } else if let Some(decimal) = entity.strip_prefix('#') {
                    decimal.parse().ok()?
                } else {
                    return None;
                };
                char::from_u32(code)?
            }
        };
        out.push(decoded);
        rest = &after[semicolon + 1..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_first_element_by_exact_name() {
        let document = "<Error><CodeX>no</CodeX><Code>Throttling</Code><Code>second</Code></Error>";
        assert_eq!(element_text(document, "Code"), Some("Throttling"));
    }

    #[test]
    fn element_with_attributes_is_found() {
        let document = r#"<Response xmlns="x"><Message lang="en">slow down</Message></Response>"#;
        assert_eq!(element_text(document, "Message"), Some("slow down"));
    }

    #[test]
    fn missing_element_is_none() {
        assert_eq!(element_text("<a>1</a>", "b"), None);
        assert_eq!(element_text("<b>unclosed", "b"), None);
    }

    #[test]
    fn entities_are_replaced() {
        assert_eq!(
            unescape("a&lt;b&gt;&amp;&quot;&apos;&#65;&#x42;").as_deref(),
            Some("a<b>&\"'AB")
        );
    }

    #[test]
    fn unknown_entity_is_rejected() {
        assert_eq!(unescape("a&nbsp;b"), None);
        assert_eq!(unescape("a&amp b"), None);
    }
}

//! Text from outside, checked once for characters that neither a CRM nor PostgreSQL can hold.
//!
//! PostgreSQL refuses U+0000 in any text, and the other C0 control characters break the XML and
//! form encodings CRMs and mail servers use. Tab, line feed and carriage return are ordinary text.

use std::borrow::Cow;

use serde_json::Value;

/// The first character of `text` that may not be stored, if any.
pub fn forbidden_char(text: &str) -> Option<char> {
    text.chars().find(|&c| is_forbidden(c))
}

fn is_forbidden(c: char) -> bool {
    c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{7f}')
}

/// `text` without the characters that may not be stored (borrowed when it has none).
pub fn strip_forbidden(text: &str) -> Cow<'_, str> {
    if forbidden_char(text).is_none() {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.chars().filter(|&c| !is_forbidden(c)).collect())
    }
}

/// Where in a JSON document a forbidden character sits, as `name`, `fields.price` or `items[2]`,
/// and which character it is, for an error that names the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForbiddenAt {
    pub path: String,
    pub character: char,
}

impl ForbiddenAt {
    pub fn code(&self) -> String {
        code(self.character)
    }
}

/// A character as a sender can search for it: `U+0000`.
pub fn code(character: char) -> String {
    format!("U+{:04X}", u32::from(character))
}

/// The first forbidden character in any key or string of `value`.
pub fn find_in_json(value: &Value) -> Option<ForbiddenAt> {
    fn walk(value: &Value, path: &str) -> Option<ForbiddenAt> {
        match value {
            Value::String(text) => {
                forbidden_char(text).map(|character| ForbiddenAt { path: path.to_owned(), character })
            }
            Value::Array(items) => {
                items.iter().enumerate().find_map(|(index, item)| walk(item, &format!("{path}[{index}]")))
            }
            Value::Object(fields) => fields.iter().find_map(|(key, item)| {
                let inner = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                match forbidden_char(key) {
                    Some(character) => Some(ForbiddenAt { path: inner, character }),
                    None => walk(item, &inner),
                }
            }),
            Value::Null | Value::Bool(_) | Value::Number(_) => None,
        }
    }
    walk(value, "")
}

/// Removes forbidden characters from every key and string of `value`; returns how many strings
/// changed.
pub fn strip_in_json(value: &mut Value) -> usize {
    match value {
        Value::String(text) => match strip_forbidden(text) {
            Cow::Owned(clean) => {
                *text = clean;
                1
            }
            Cow::Borrowed(_) => 0,
        },
        Value::Array(items) => items.iter_mut().map(strip_in_json).sum(),
        Value::Object(fields) => {
            if fields.keys().any(|key| forbidden_char(key).is_some()) {
                let taken = std::mem::take(fields);
                *fields = taken.into_iter().map(|(key, item)| (strip_forbidden(&key).into_owned(), item)).collect();
            }
            fields.values_mut().map(strip_in_json).sum()
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nul_and_other_controls_are_forbidden_but_tabs_and_line_breaks_are_text() {
        assert_eq!(forbidden_char("Иван\u{0}"), Some('\u{0}'));
        assert_eq!(forbidden_char("a\u{1b}[31m"), Some('\u{1b}'));
        assert_eq!(forbidden_char("строка 1\r\nстрока 2\tконец"), None);
        assert_eq!(strip_forbidden("Ив\u{0}ан\u{7}"), "Иван");
        assert!(matches!(strip_forbidden("чисто"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_path_of_a_forbidden_character_in_json_names_the_field() {
        let at = |value: Value| find_in_json(&value).map(|found| (found.path.clone(), found.code()));
        assert_eq!(at(json!({"name": "Иван\u{0}"})), Some(("name".into(), "U+0000".into())));
        assert_eq!(at(json!({"extra": {"tags": ["ok", "x\u{1}"]}})), Some(("extra.tags[1]".into(), "U+0001".into())));
        assert_eq!(at(json!({"a\u{0}b": 1})), Some(("a\u{0}b".into(), "U+0000".into())));
        assert_eq!(at(json!({"name": "Иван", "n": 1, "list": [null, true]})), None);
    }

    #[test]
    fn stripping_json_cleans_keys_and_strings_and_counts_them() {
        let mut value = json!({"clientListingId": "L\u{0}1", "k\u{0}": "v", "list": ["\u{2}a", "b"]});
        assert_eq!(strip_in_json(&mut value), 2);
        assert_eq!(value, json!({"clientListingId": "L1", "k": "v", "list": ["a", "b"]}));
        assert_eq!(find_in_json(&value), None);
    }
}

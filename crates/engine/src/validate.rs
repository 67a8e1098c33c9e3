//! Input rules that are the engine's to enforce (shapes are the adapter's).

use strongroom_core::{Error, Result};

/// Lower-cases and checks an email address.
pub fn email(raw: &str) -> Result<String> {
    let e = raw.trim().to_lowercase();
    let ok = e.len() <= 254
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@') && domain.contains('.')
        })
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(e)
    } else {
        Err(Error::invalid("email is not a valid address"))
    }
}

/// 1claw's password policy: at least 12 characters with an upper-case letter, a
/// lower-case letter, a digit and a special character; no run of three identical
/// characters and no three consecutive ones (`abc`, `321`).
pub fn password(p: &str) -> Result<()> {
    let chars: Vec<char> = p.chars().collect();
    if chars.len() < 12 || p.len() > 1024 {
        return Err(Error::invalid(
            "password must be between 12 and 1024 characters long",
        ));
    }
    let has = |f: fn(&char) -> bool| chars.iter().any(f);
    if !(has(char::is_ascii_uppercase)
        && has(char::is_ascii_lowercase)
        && has(char::is_ascii_digit)
        && has(|c| !c.is_alphanumeric()))
    {
        return Err(Error::invalid(
            "password must contain an upper-case letter, a lower-case letter, a digit and a special character",
        ));
    }
    for w in chars.windows(3) {
        let (a, b, c) = (w[0] as i64, w[1] as i64, w[2] as i64);
        if a == b && b == c {
            return Err(Error::invalid(
                "password must not repeat a character three times in a row",
            ));
        }
        if (b - a == 1 && c - b == 1) || (a - b == 1 && b - c == 1) {
            return Err(Error::invalid(
                "password must not contain three consecutive characters such as abc or 321",
            ));
        }
    }
    Ok(())
}

/// A short free-text field (names).
pub fn name(field: &str, v: &str, max: usize) -> Result<String> {
    let t = v.trim();
    if t.is_empty() {
        return Err(Error::invalid(format!("{field} must not be empty")));
    }
    text(field, t, max)
}

/// A free-text field that may be empty.
pub fn text(field: &str, v: &str, max: usize) -> Result<String> {
    if v.chars().count() > max {
        return Err(Error::invalid(format!(
            "{field} must be at most {max} characters"
        )));
    }
    if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Error::invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(v.to_owned())
}

/// Token or key scopes: at most 64, each at most 256 characters, no control characters.
pub fn scopes(v: Vec<String>) -> Result<Vec<String>> {
    if v.len() > 64 {
        return Err(Error::invalid("at most 64 scopes"));
    }
    for s in &v {
        if s.is_empty() || s.len() > 256 || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(Error::invalid(
                "each scope must be 1 to 256 characters without spaces",
            ));
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords() {
        assert!(password("Correct-Horse-42!").is_ok());
        for bad in [
            "short1A!",
            "alllowercase-42!",
            "ALLUPPER-42!XX",
            "NoDigits-Here!",
            "NoSpecial42Here",
            "Passsword-42!x",
            "Pabcword-42!xy",
            "Pa321word-4!x",
        ] {
            assert!(password(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(email(" Ann@Example.COM ").unwrap(), "ann@example.com");
        for bad in ["", "ann", "@x.y", "ann@", "a@b", "a b@c.d", "a@b@c.d"] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }
}

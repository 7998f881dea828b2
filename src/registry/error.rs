//! The typed errors of the registry client: the cases callers branch on
//! (authentication failed, not found, denied) and the evidence of the rest
//! (status and an excerpt of the body). They travel inside `anyhow::Error`;
//! [`RegistryError::is_not_found`] and [`RegistryError::is_unauthorized`]
//! look through any context added on the way up.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryError {
    /// Credentials were refused, or the registry wants some and we have none.
    Unauthorized { registry: String, detail: String },
    /// 404, or MANIFEST_UNKNOWN / BLOB_UNKNOWN / NAME_UNKNOWN.
    NotFound { what: String, detail: String },
    /// 403 or DENIED: the credentials are valid but may not do this.
    Denied { what: String, detail: String },
    /// Any other unexpected status.
    Status { what: String, status: u16, detail: String },
    /// Content that does not match the digest it was asked for by.
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    /// A response longer than casco reads.
    TooLarge { what: String, limit: u64 },
}

impl RegistryError {
    fn find(e: &anyhow::Error) -> Option<&RegistryError> {
        e.chain().find_map(|c| c.downcast_ref::<RegistryError>())
    }

    /// Whether `e` (or an error it wraps) is [`RegistryError::NotFound`].
    pub fn is_not_found(e: &anyhow::Error) -> bool {
        matches!(Self::find(e), Some(RegistryError::NotFound { .. }))
    }

    /// Whether `e` (or an error it wraps) is [`RegistryError::Unauthorized`].
    pub fn is_unauthorized(e: &anyhow::Error) -> bool {
        matches!(Self::find(e), Some(RegistryError::Unauthorized { .. }))
    }

    /// Whether `e` (or an error it wraps) is [`RegistryError::Denied`].
    pub fn is_denied(e: &anyhow::Error) -> bool {
        matches!(Self::find(e), Some(RegistryError::Denied { .. }))
    }
}

fn with_detail(f: &mut fmt::Formatter<'_>, detail: &str) -> fmt::Result {
    if detail.is_empty() {
        Ok(())
    } else {
        write!(f, ": {detail}")
    }
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::Unauthorized { registry, detail } => {
                write!(f, "authentication failed for {registry}")?;
                with_detail(f, detail)
            }
            RegistryError::NotFound { what, detail } => {
                write!(f, "{what}: not found")?;
                with_detail(f, detail)
            }
            RegistryError::Denied { what, detail } => {
                write!(f, "{what}: access denied")?;
                with_detail(f, detail)
            }
            RegistryError::Status { what, status, detail } => {
                write!(f, "{what}: unexpected HTTP status {status}")?;
                with_detail(f, detail)
            }
            RegistryError::DigestMismatch { what, expected, actual } => {
                write!(f, "{what}: digest mismatch: expected {expected}, got {actual}")
            }
            RegistryError::TooLarge { what, limit } => write!(f, "{what}: larger than the {limit}-byte limit"),
        }
    }
}

impl std::error::Error for RegistryError {}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn helpers_see_through_context() {
        let e: anyhow::Result<()> = Err(RegistryError::NotFound {
            what: "manifest x".into(),
            detail: String::new(),
        }
        .into());
        let e = e.context("pull x").context("outer").unwrap_err();
        assert!(RegistryError::is_not_found(&e));
        assert!(!RegistryError::is_unauthorized(&e));
        let u = anyhow::Error::new(RegistryError::Unauthorized {
            registry: "r.example".into(),
            detail: "no".into(),
        });
        assert!(RegistryError::is_unauthorized(&u));
        assert_eq!(u.to_string(), "authentication failed for r.example: no");
        assert!(!RegistryError::is_not_found(&anyhow::anyhow!("plain")));
    }
}

//! The cty layer's error type.
//!
//! Messages name the attribute path and what was expected, never the offending value itself:
//! decoded payloads can hold secrets (credentials travel as attributes).

use thiserror::Error;

use super::Path;

/// Why a value, type or number could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CtyError {
    /// The bytes do not hold a value of the expected type.
    #[error("cannot decode value at {}: {message}", show(path))]
    Decode {
        /// Where decoding failed (root = empty).
        path: Path,
        /// What was expected or wrong.
        message: String,
    },
    /// The value does not conform to the type it is encoded as.
    #[error("cannot encode value at {}: {message}", show(path))]
    Encode {
        /// Where encoding failed (root = empty).
        path: Path,
        /// What was expected or wrong.
        message: String,
    },
    /// Terraform type JSON that is not a valid cty type.
    #[error("invalid cty type JSON: {0}")]
    InvalidType(String),
    /// Text that is not a decimal number (or whose exponent is out of range).
    #[error("invalid number: expected decimal text such as 12, -0.5 or 1e400")]
    InvalidNumber,
}

impl CtyError {
    /// The attribute path at fault, when the error concerns a value.
    pub fn path(&self) -> Option<&Path> {
        match self {
            CtyError::Decode { path, .. } | CtyError::Encode { path, .. } => Some(path),
            CtyError::InvalidType(_) | CtyError::InvalidNumber => None,
        }
    }

    pub(crate) fn decode(path: &Path, message: impl Into<String>) -> CtyError {
        CtyError::Decode {
            path: path.clone(),
            message: message.into(),
        }
    }

    pub(crate) fn encode(path: &Path, message: impl Into<String>) -> CtyError {
        CtyError::Encode {
            path: path.clone(),
            message: message.into(),
        }
    }
}

fn show(path: &Path) -> String {
    if path.0.is_empty() {
        "(root)".to_string()
    } else {
        path.to_string()
    }
}

//! Operator errors, grouped by what the caller can do about them.

use thiserror::Error;

/// A spec the operator refuses; names the field so `kubectl describe` tells the user what to fix.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{field}: {problem}")]
pub struct InvalidSpec {
    /// Dotted path of the field, e.g. `spec.sectorSize`.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl InvalidSpec {
    /// An error for `field`.
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// Why a reconcile failed.
#[derive(Debug, Error)]
pub enum Error {
    /// The user must fix the spec; retrying will not help.
    #[error("invalid spec: {0}")]
    InvalidSpec(#[from] InvalidSpec),
    /// The object could not even be parsed (the watch stays healthy; the object is marked).
    #[error("unparsable object: {0}")]
    InvalidObject(String),
    /// The identity Secret is missing data or holds a bad key; names the Secret and key.
    #[error("identity secret {secret}: {problem}")]
    Identity {
        /// Secret name.
        secret: String,
        /// What is wrong.
        problem: String,
    },
    /// The identity Secret was generated for another node: two nodes would share one key
    /// (and one would take the other's proofs). Retried, in case the holder goes away.
    #[error(
        "identity secret {secret} belongs to {holder}; give this node its own (spec.identity.secretName)"
    )]
    DuplicateKey {
        /// Secret name.
        secret: String,
        /// The node it was generated for, `Kind namespace/name`.
        holder: String,
    },
    /// The API server refused or failed a call; retried with backoff.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The agent configuration could not be serialised (a bug).
    #[error("agent config: {0}")]
    Config(#[from] serde_yaml::Error),
    /// An object could not be encoded as JSON (a bug).
    #[error("encoding: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// Stable CamelCase label for metrics and Event reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidSpec(_) => "InvalidSpec",
            Self::InvalidObject(_) => "InvalidObject",
            Self::Identity { .. } => "IdentityError",
            Self::DuplicateKey { .. } => "DuplicateKey",
            Self::Kube(kube::Error::Api(status)) if status.code == 409 => "Conflict",
            Self::Kube(kube::Error::Api(status)) if status.code == 403 => "Forbidden",
            Self::Kube(kube::Error::Api(status)) if status.code == 422 => "Unprocessable",
            Self::Kube(_) => "KubeApi",
            Self::Config(_) | Self::Json(_) => "Encoding",
        }
    }

    /// Whether retrying can help (an invalid spec waits for the user instead).
    pub fn retryable(&self) -> bool {
        !matches!(self, Self::InvalidSpec(_) | Self::InvalidObject(_))
    }
}

/// Result of a reconcile step.
pub type Result<T, E = Error> = std::result::Result<T, E>;

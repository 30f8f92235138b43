//! Reaching the operator's HTTP endpoints (manifests, claims): through the apiserver's
//! service proxy with the kubeconfig's credentials, or straight to an address.

use kube::{Client, Config};
use thiserror::Error;

/// Tries of one request the operator answers 429 (rate-limited), a second apart.
const RATE_LIMIT_TRIES: u32 = 5;

/// Name of the operator Service's HTTP port (the chart's `http`, 8080); the service proxy
/// addresses ports by name so the number can change without breaking the plugin.
pub const HTTP_PORT_NAME: &str = "http";

/// Namespace the chart installs the operator into.
pub const DEFAULT_NAMESPACE: &str = "depin-system";

/// Service name the chart gives the operator (its release name).
pub const DEFAULT_SERVICE: &str = "depin-operator";

/// How to reach the operator's HTTP endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OperatorAccess {
    /// Through `/api/v1/namespaces/{namespace}/services/{service}:http/proxy` (needs
    /// `get` on `services/proxy`; nothing to port-forward).
    ServiceProxy {
        /// Namespace of the operator Service.
        namespace: String,
        /// Name of the operator Service.
        service: String,
    },
    /// Plain HTTP to this base URL, e.g. `http://127.0.0.1:8080` after a port-forward.
    Direct {
        /// Base URL of the operator's HTTP listener.
        url: http::Uri,
    },
}

impl Default for OperatorAccess {
    fn default() -> Self {
        Self::ServiceProxy {
            namespace: DEFAULT_NAMESPACE.into(),
            service: DEFAULT_SERVICE.into(),
        }
    }
}

/// Why an operator endpoint gave no usable answer.
#[derive(Debug, Error)]
pub enum OperatorError {
    /// A path segment the user gave is not a Kubernetes name, so it cannot go in a URL.
    #[error("{field} {value:?} is not a Kubernetes name (lower-case letters, digits, '-', '.')")]
    BadName {
        /// Which argument.
        field: &'static str,
        /// What was given.
        value: String,
    },
    /// The apiserver has no such Service: the operator lives elsewhere.
    #[error(
        "service {namespace}/{service} not found; point at the operator with \
         --operator-namespace/--operator-service or --operator-url"
    )]
    ServiceMissing {
        /// Namespace looked in.
        namespace: String,
        /// Service looked for.
        service: String,
    },
    /// The operator answered 404: what was asked for does not exist (yet).
    #[error("{what}: not found at the operator ({message})")]
    NotFound {
        /// What was asked for.
        what: String,
        /// The operator's explanation.
        message: String,
    },
    /// The operator (or the proxy in front of it) answered another error status.
    #[error("{what}: operator answered {code}: {message}")]
    Answered {
        /// What was asked for.
        what: String,
        /// HTTP status.
        code: u16,
        /// Response body.
        message: String,
    },
    /// The request did not get an HTTP answer (connection, TLS, credentials).
    #[error("{what}: cannot reach the operator via {via}")]
    Unreachable {
        /// What was asked for.
        what: String,
        /// The proxy path or URL tried.
        via: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The answer was not what the endpoint documents.
    #[error("{what}: unreadable answer from the operator")]
    BadBody {
        /// What was asked for.
        what: String,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
}

/// Checks that `value` can be a URL path segment as-is: every name the operator serves
/// (policy, namespace, node) is a Kubernetes name, so no percent-encoding is needed.
pub fn check_name(field: &'static str, value: &str) -> Result<(), OperatorError> {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    // Starting and ending alphanumeric (as Kubernetes requires) also rules out `..`.
    let ok = value.len() <= 253
        && value.bytes().next().is_some_and(alnum)
        && value.bytes().last().is_some_and(alnum)
        && value.bytes().all(|b| alnum(b) || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(OperatorError::BadName {
            field,
            value: value.into(),
        })
    }
}

impl OperatorAccess {
    /// Where `path` (starting with `/`) is requested: the proxy path, or the direct URL.
    pub fn location(&self, path: &str) -> String {
        match self {
            Self::ServiceProxy { namespace, service } => format!(
                "/api/v1/namespaces/{namespace}/services/{service}:{HTTP_PORT_NAME}/proxy{path}"
            ),
            Self::Direct { url } => format!("{}{path}", url.to_string().trim_end_matches('/')),
        }
    }

    /// GETs `path` (e.g. `/rewards/p/epochs/3/manifest`) as text; `what` names the object
    /// in errors. `client` carries the kubeconfig credentials for the proxy; a direct URL
    /// gets a client of its own.
    pub async fn get_text(
        &self,
        client: &Client,
        path: &str,
        what: &str,
    ) -> Result<String, OperatorError> {
        let via = self.location(path);
        let unreachable = |source| OperatorError::Unreachable {
            what: what.into(),
            via: via.clone(),
            source,
        };
        let (client, request_path) = match self {
            Self::ServiceProxy { .. } => (client.clone(), via.clone()),
            Self::Direct { url } => (
                Client::try_from(Config::new(url.clone())).map_err(unreachable)?,
                path.to_owned(),
            ),
        };
        // The operator rate-limits each client address (429, Retry-After: 1): wait and
        // ask again a few times before giving up.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let request = http::Request::get(request_path.clone())
                .body(Vec::new())
                .map_err(|e| unreachable(kube::Error::HttpError(e)))?;
            match client.request_text(request).await {
                Ok(text) => return Ok(text),
                Err(kube::Error::Api(status))
                    if status.code == 429 && attempt < RATE_LIMIT_TRIES =>
                {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                Err(kube::Error::Api(status)) => {
                    return Err(self.answered(
                        what,
                        status.code,
                        status.reason.as_str(),
                        status.message,
                    ));
                }
                Err(err) => return Err(unreachable(err)),
            }
        }
    }

    /// Classifies an error status: the apiserver's own 404 (a JSON Status, reason
    /// `NotFound`) means the Service is missing; the operator's 404s are plain text.
    fn answered(&self, what: &str, code: u16, reason: &str, message: String) -> OperatorError {
        match self {
            Self::ServiceProxy { namespace, service } if code == 404 && reason == "NotFound" => {
                OperatorError::ServiceMissing {
                    namespace: namespace.clone(),
                    service: service.clone(),
                }
            }
            _ if code == 404 => OperatorError::NotFound {
                what: what.into(),
                message,
            },
            _ => OperatorError::Answered {
                what: what.into(),
                code,
                message,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_and_direct_locations() {
        let proxy = OperatorAccess::default();
        assert_eq!(
            proxy.location("/rewards/p/epochs/3/manifest"),
            "/api/v1/namespaces/depin-system/services/depin-operator:http/proxy/rewards/p/epochs/3/manifest"
        );
        let direct = OperatorAccess::Direct {
            url: "http://127.0.0.1:8080/".parse().expect("uri"),
        };
        assert_eq!(
            direct.location("/rewards/p/claims/ns/n"),
            "http://127.0.0.1:8080/rewards/p/claims/ns/n"
        );
    }

    #[test]
    fn error_statuses_are_told_apart() {
        let proxy = OperatorAccess::default();
        let missing = proxy.answered(
            "x",
            404,
            "NotFound",
            "services \"depin-operator\" not found".into(),
        );
        assert!(
            matches!(missing, OperatorError::ServiceMissing { .. }),
            "{missing}"
        );
        let closed = proxy.answered(
            "manifest of policy p epoch 9",
            404,
            "Failed to parse error data",
            "epoch not closed".into(),
        );
        assert_eq!(
            closed.to_string(),
            "manifest of policy p epoch 9: not found at the operator (epoch not closed)"
        );
        let down = proxy.answered(
            "x",
            503,
            "ServiceUnavailable",
            "no endpoints available".into(),
        );
        assert!(
            matches!(down, OperatorError::Answered { code: 503, .. }),
            "{down}"
        );
    }

    #[test]
    fn only_kubernetes_names_go_into_paths() {
        for good in ["default", "fleet-1", "a.b"] {
            assert!(check_name("policy", good).is_ok(), "{good}");
        }
        for bad in ["", "Fleet", "a/b", "a?b", "..", "-a", "a b"] {
            assert!(check_name("policy", bad).is_err(), "{bad:?}");
        }
    }
}

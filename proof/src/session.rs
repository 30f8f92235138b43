//! Session keys bound to a node's long-term key by the verifier's nonce (gateway-rs
//! `session_init` pattern): the long-term key signs once per connection, every later
//! message is signed by a throw-away session key.

use std::collections::{BTreeSet, HashSet};

use crate::identity::{NodeKey, PublicKey};
use crate::layout::Layout;
use crate::reject::RejectReason;

/// Domain tag of [`SessionHello`] signatures.
pub const HELLO_DOMAIN: &[u8] = b"depin/session-hello/v2";

/// The verifier's per-connection nonce; a hello over any other nonce is a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServerNonce(pub [u8; 32]);

impl ServerNonce {
    /// A fresh nonce from the operating system's random source.
    pub fn random() -> Self {
        let mut nonce = [0u8; 32];
        rand::Rng::fill(&mut rand::rngs::OsRng, &mut nonce[..]);
        Self(nonce)
    }
}

/// The first message on a connection: the node vouches for a session key over the nonce.
/// Signed (by `node`) body: `node (32) || session_key (32) || nonce (32)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionHello {
    /// The node's long-term public key.
    pub node: PublicKey,
    /// The session public key every later message is signed with.
    pub session_key: PublicKey,
    /// The server nonce this hello answers.
    pub nonce: ServerNonce,
    /// ed25519 signature by `node` over [`SessionHello::signing_bytes`].
    pub signature: [u8; 64],
}

impl SessionHello {
    /// Builds and signs a hello with the node's long-term key, for the verifier holding
    /// `verifier` (the key its ServerHello showed, which the agent has pinned): the hello
    /// is worthless to any other verifier, so an impostor cannot pass it on.
    pub fn sign(
        node_key: &NodeKey,
        session_key: &PublicKey,
        nonce: ServerNonce,
        verifier: &PublicKey,
    ) -> Self {
        let node = node_key.public();
        let body = hello_body(&node, session_key, &nonce, verifier);
        Self {
            node,
            session_key: *session_key,
            nonce,
            signature: node_key.sign(HELLO_DOMAIN, &body),
        }
    }

    /// The exact bytes the signature covers (domain prefix included), for `verifier`.
    pub fn signing_bytes(&self, verifier: &PublicKey) -> Vec<u8> {
        crate::identity::signing_bytes(
            HELLO_DOMAIN,
            &hello_body(&self.node, &self.session_key, &self.nonce, verifier),
        )
    }
}

fn hello_body(
    node: &PublicKey,
    session_key: &PublicKey,
    nonce: &ServerNonce,
    verifier: &PublicKey,
) -> Vec<u8> {
    Layout::with_capacity(128)
        .fixed32(node.as_bytes())
        .fixed32(session_key.as_bytes())
        .fixed32(&nonce.0)
        .fixed32(verifier.as_bytes())
        .finish()
}

/// The caller's registry of nodes allowed to open sessions.
pub trait KnownNodes {
    /// Whether `node` is registered.
    fn is_known(&self, node: &PublicKey) -> bool;
}

impl<S: std::hash::BuildHasher> KnownNodes for HashSet<PublicKey, S> {
    fn is_known(&self, node: &PublicKey) -> bool {
        self.contains(node)
    }
}

impl KnownNodes for BTreeSet<PublicKey> {
    fn is_known(&self, node: &PublicKey) -> bool {
        self.contains(node)
    }
}

/// What [`verify_hello`] checks a hello against.
pub struct HelloContext<'a> {
    /// The nonce this connection sent.
    pub nonce: &'a ServerNonce,
    /// Registered nodes.
    pub known_nodes: &'a dyn KnownNodes,
    /// The verifier's own key, which the hello must be signed for.
    pub verifier: &'a PublicKey,
}

/// An accepted session: which node it speaks for and the key its messages are signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The node's long-term key (challenges derive from it).
    pub node: PublicKey,
    /// The key that signs every message in this session.
    pub session_key: PublicKey,
    /// The nonce that bound the session.
    pub nonce: ServerNonce,
}

impl Session {
    /// Checks a message signature made by the session key.
    pub fn verify(
        &self,
        domain: &[u8],
        body: &[u8],
        signature: &[u8; 64],
    ) -> Result<(), RejectReason> {
        if self.session_key.verify(domain, body, signature) {
            Ok(())
        } else {
            Err(RejectReason::BadSignature)
        }
    }
}

/// Accepts a hello that answers this connection's nonce, from a registered node, signed by
/// that node's long-term key.
pub fn verify_hello(hello: &SessionHello, ctx: &HelloContext<'_>) -> Result<Session, RejectReason> {
    if hello.nonce != *ctx.nonce {
        return Err(RejectReason::WrongSessionNonce);
    }
    if !ctx.known_nodes.is_known(&hello.node) {
        return Err(RejectReason::UnknownNode);
    }
    let body = hello_body(&hello.node, &hello.session_key, &hello.nonce, ctx.verifier);
    if !hello.node.verify(HELLO_DOMAIN, &body, &hello.signature) {
        return Err(RejectReason::BadSignature);
    }
    Ok(Session {
        node: hello.node,
        session_key: hello.session_key,
        nonce: hello.nonce,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        node: NodeKey,
        session: NodeKey,
        nonce: ServerNonce,
        known: BTreeSet<PublicKey>,
        verifier: PublicKey,
    }

    fn fixture() -> Fixture {
        let node = NodeKey::from_seed([1; 32]);
        let known = [node.public()].into_iter().collect();
        Fixture {
            node,
            session: NodeKey::from_seed([2; 32]),
            nonce: ServerNonce([7; 32]),
            known,
            verifier: NodeKey::from_seed([3; 32]).public(),
        }
    }

    #[test]
    fn honest_hello_binds_the_session_key() {
        let f = fixture();
        let hello = SessionHello::sign(&f.node, &f.session.public(), f.nonce, &f.verifier);
        let session = verify_hello(
            &hello,
            &HelloContext {
                nonce: &f.nonce,
                known_nodes: &f.known,
                verifier: &f.verifier,
            },
        )
        .expect("honest");
        assert_eq!(session.session_key, f.session.public());
        let sig = f.session.sign(b"msg", b"body");
        assert_eq!(session.verify(b"msg", b"body", &sig), Ok(()));
        // The long-term key does not speak for the session once a session key is bound.
        let by_node = f.node.sign(b"msg", b"body");
        assert_eq!(
            session.verify(b"msg", b"body", &by_node),
            Err(RejectReason::BadSignature)
        );
    }

    #[test]
    fn each_lie_has_its_reason() {
        let f = fixture();
        let stranger = NodeKey::from_seed([9; 32]);
        let honest = SessionHello::sign(&f.node, &f.session.public(), f.nonce, &f.verifier);
        let table: Vec<(&str, SessionHello, RejectReason)> = vec![
            (
                "old nonce",
                SessionHello::sign(
                    &f.node,
                    &f.session.public(),
                    ServerNonce([8; 32]),
                    &f.verifier,
                ),
                RejectReason::WrongSessionNonce,
            ),
            (
                "unregistered node",
                SessionHello::sign(&stranger, &f.session.public(), f.nonce, &f.verifier),
                RejectReason::UnknownNode,
            ),
            (
                "signed for another verifier (an impostor passing it on)",
                SessionHello::sign(&f.node, &f.session.public(), f.nonce, &stranger.public()),
                RejectReason::BadSignature,
            ),
            (
                "session key swapped after signing",
                SessionHello {
                    session_key: stranger.public(),
                    ..honest.clone()
                },
                RejectReason::BadSignature,
            ),
            (
                "signed by the session key instead",
                SessionHello {
                    signature: f.session.sign(
                        HELLO_DOMAIN,
                        &hello_body(&honest.node, &honest.session_key, &f.nonce, &f.verifier),
                    ),
                    ..honest.clone()
                },
                RejectReason::BadSignature,
            ),
        ];
        let ctx = HelloContext {
            nonce: &f.nonce,
            known_nodes: &f.known,
            verifier: &f.verifier,
        };
        for (name, hello, want) in table {
            assert_eq!(verify_hello(&hello, &ctx), Err(want), "{name}");
        }
    }

    #[test]
    fn signing_bytes_layout_is_fixed() {
        let f = fixture();
        let hello = SessionHello::sign(&f.node, &f.session.public(), f.nonce, &f.verifier);
        let bytes = hello.signing_bytes(&f.verifier);
        assert_eq!(bytes.len(), 2 + HELLO_DOMAIN.len() + 128);
        assert_eq!(&bytes[2 + HELLO_DOMAIN.len()..][64..96], &[7; 32]);
        assert_eq!(
            &bytes[2 + HELLO_DOMAIN.len()..][96..],
            f.verifier.as_bytes()
        );
        assert!(f.node.public().verify(
            HELLO_DOMAIN,
            &bytes[2 + HELLO_DOMAIN.len()..],
            &hello.signature
        ));
    }
}

//! A hand-driven agent session for the end-to-end tests: it speaks the real protocol but
//! lies or dawdles on purpose, so the verifier's rejections can be checked on a cluster.

use anyhow::{Context as _, bail};
use depin_proof::gpu::ChainWork;
use depin_proof::identity::{NodeKey, PublicKey};
use depin_proof::receipt::Receipt;
use depin_proof::session::{ServerNonce, SessionHello};
use depin_proto::v1;
use depin_proto::v1::agent_message::Body as Out;
use depin_proto::v1::verifier_message::Body as In;
use depin_proto::wire;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// An open session speaking for `node`.
pub struct RogueSession {
    /// The node key it signs with.
    pub node: NodeKey,
    /// Its session key.
    pub session_key: NodeKey,
    verifier: PublicKey,
    tx: mpsc::Sender<v1::AgentMessage>,
    inbound: tonic::Streaming<v1::VerifierMessage>,
}

impl RogueSession {
    /// Connects and says hello as a GPU worker; `Err(status)` is the verifier's refusal.
    pub async fn open(
        endpoint: &str,
        node: NodeKey,
    ) -> anyhow::Result<Result<Self, tonic::Status>> {
        Self::open_as(endpoint, node, "gpu").await
    }

    /// Connects and says hello in agent role `role` (gpu, storage, hotspot, meter).
    pub async fn open_as(
        endpoint: &str,
        node: NodeKey,
        role: &str,
    ) -> anyhow::Result<Result<Self, tonic::Status>> {
        let mut client = v1::verifier_client::VerifierClient::connect(endpoint.to_string())
            .await
            .with_context(|| format!("connecting to {endpoint}"))?;
        let (tx, rx) = mpsc::channel(64);
        let mut inbound = match client.session(ReceiverStream::new(rx)).await {
            Ok(response) => response.into_inner(),
            Err(status) => return Ok(Err(status)),
        };
        let hello = match inbound.message().await {
            Ok(Some(v1::VerifierMessage {
                body: Some(In::ServerHello(h)),
            })) => h,
            Ok(other) => bail!("expected ServerHello, got {other:?}"),
            Err(status) => return Ok(Err(status)),
        };
        let nonce = ServerNonce(hello.nonce.as_slice().try_into().context("nonce length")?);
        let session_key = NodeKey::generate();
        let verifier = wire::key_from_wire(&hello.verifier_key)
            .map_err(|r| anyhow::anyhow!("verifier key: {r:?}"))?;
        let signed = SessionHello::sign(&node, &session_key.public(), nonce, &verifier);
        let body = Out::Hello(wire::hello_to_wire(&signed, role, "rogue"));
        tx.send(v1::AgentMessage { body: Some(body) }).await?;
        match inbound.message().await {
            Ok(Some(v1::VerifierMessage {
                body: Some(In::Welcome(_)),
            })) => {}
            Ok(other) => bail!("expected Welcome, got {other:?}"),
            Err(status) => return Ok(Err(status)),
        }
        let verifier = wire::key_from_wire(&hello.verifier_key)
            .map_err(|r| anyhow::anyhow!("verifier key: {r}"))?;
        Ok(Ok(Self {
            node,
            session_key,
            verifier,
            tx,
            inbound,
        }))
    }

    /// Sends one message.
    pub async fn send(&self, body: Out) -> anyhow::Result<()> {
        Ok(self.tx.send(v1::AgentMessage { body: Some(body) }).await?)
    }

    /// The next message `pick` accepts, within `timeout` (others are skipped).
    pub async fn next_where<T>(
        &mut self,
        timeout: Duration,
        mut pick: impl FnMut(In) -> Option<T>,
    ) -> anyhow::Result<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let message = tokio::time::timeout_at(deadline, self.inbound.message())
                .await
                .context("verifier did not send the expected message in time")??;
            let body = message.and_then(|m| m.body).context("session ended")?;
            if let Some(found) = pick(body) {
                return Ok(found);
            }
        }
    }

    /// The next receipt, checked against the verifier's key.
    pub async fn receipt(&mut self) -> anyhow::Result<Receipt> {
        let wire_receipt = self
            .next_where(Duration::from_secs(30), |m| {
                if let In::Receipt(r) = m {
                    Some(r)
                } else {
                    None
                }
            })
            .await?;
        let receipt = wire::receipt_from_wire(self.node.public(), &wire_receipt)
            .map_err(|r| anyhow::anyhow!("receipt: {r}"))?;
        anyhow::ensure!(
            receipt.verify(&self.verifier),
            "receipt not signed by the verifier"
        );
        Ok(receipt)
    }

    /// Waits for a GPU chain challenge, computes it, waits `delay`, and commits; returns
    /// the work so the caller can open the sampled rows.
    pub async fn commit_next_gpu_challenge(
        &mut self,
        delay: Duration,
    ) -> anyhow::Result<ChainWork> {
        let wire_challenge = self
            .next_where(Duration::from_secs(90), |m| {
                if let In::GpuChallenge(c) = m {
                    Some(c)
                } else {
                    None
                }
            })
            .await?;
        let challenge = depin_proto::gpu_wire::chain_challenge_from_wire(&wire_challenge)
            .map_err(|r| anyhow::anyhow!("challenge: {r}"))?;
        let work = ChainWork::compute(&challenge, &self.node.public(), 2)
            .context("challenge matrix size")?;
        tokio::time::sleep(delay).await;
        let commitment = work.commit(&self.session_key);
        self.send(Out::GpuCommitment(
            depin_proto::gpu_wire::chain_commitment_to_wire(
                &self.session_key.public(),
                &commitment,
            ),
        ))
        .await?;
        Ok(work)
    }

    /// Answers the verifier's sample request for `work`; returns the opening sent, for
    /// replays.
    pub async fn open_rows(&mut self, work: &ChainWork) -> anyhow::Result<v1::GpuOpening> {
        let request = self
            .next_where(Duration::from_secs(30), |m| {
                if let In::RowRequest(r) = m {
                    Some(r)
                } else {
                    None
                }
            })
            .await?;
        let request = depin_proto::gpu_wire::sample_request_from_wire(&request)
            .map_err(|r| anyhow::anyhow!("sample request: {r}"))?;
        let opening = depin_proto::gpu_wire::chain_opening_to_wire(
            &self.session_key.public(),
            &work.open(&request, &self.session_key),
        );
        self.send(Out::GpuOpening(opening.clone())).await?;
        Ok(opening)
    }
}

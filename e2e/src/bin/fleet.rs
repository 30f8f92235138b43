//! Runs the demo fleet on the cluster under test (`e2e/fleet.sh` wraps it with the local
//! cluster, the images and Prometheus).
//!
//!   fleet                 install, apply, show progress and a summary per closed epoch
//!                         until Ctrl-C, then remove the fleet
//!   fleet --epochs N      the same, but exit 0 once N epochs closed with every kind's
//!                         proofs accepted and the books balanced (exit 1 on timeout);
//!                         the fleet stays up (for the Prometheus check)
//!   fleet --remove        remove the fleet

use depin_e2e::client;
use depin_e2e::fleet::{self, POLICY};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// How long `--epochs N` waits beyond N epochs' worth of time.
const SLACK: Duration = Duration::from_secs(420);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let client = client().await?;
    let until = match args.as_slice() {
        [] => None,
        [flag] if flag == "--remove" => {
            fleet::remove(&client).await;
            println!("demo fleet removed");
            return Ok(());
        }
        [flag, n] if flag == "--epochs" => Some(n.parse::<usize>()?),
        _ => anyhow::bail!("usage: fleet [--epochs N | --remove]"),
    };
    println!("installing CRDs and the operator (from the Helm chart) ...");
    let objects = fleet::start(&client).await?;
    println!("demo fleet and simulators applied ({objects} objects)");
    if until.is_none() {
        println!("Ctrl-C stops and removes it");
    }
    // The demo's PV simulators follow the real sun: at night the meter pool pays nothing,
    // which the check accepts only when the solar model says so (fleet::unexplained_unpaid).
    let sites = fleet::demo_production_sites()?;
    let start = Instant::now();
    let already: BTreeSet<u64> = fleet::closed_epochs(&client, POLICY)
        .await?
        .iter()
        .map(|e| e.spec.epoch)
        .collect();
    let mut shown: BTreeSet<u64> = already.clone();
    let mut ticker = tokio::time::interval(Duration::from_secs(5));
    let outcome = loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = tokio::signal::ctrl_c() => break Ok(()),
        }
        // The demo's nodes are shown and checked; the books are every node the policy
        // pays, in any namespace (a user's own node beside the demo included).
        let (paid_rows, epochs) = match (
            depin_cli::fleet(&client, None).await,
            fleet::closed_epochs(&client, POLICY).await,
        ) {
            (Ok(rows), Ok(epochs)) => (rows, epochs),
            (Err(err), _) | (_, Err(err)) => {
                eprintln!("reading the fleet failed (retrying): {err:#}");
                continue;
            }
        };
        let paid_rows: Vec<_> = paid_rows
            .into_iter()
            .filter(|r| r.policy == POLICY)
            .collect();
        let rows: Vec<_> = paid_rows
            .iter()
            .filter(|r| r.namespace == fleet::NAMESPACE)
            .cloned()
            .collect();
        let new: Vec<_> = epochs
            .iter()
            .filter(|e| !already.contains(&e.spec.epoch))
            .collect();
        let new_owned: Vec<_> = new.iter().map(|e| (*e).clone()).collect();
        println!(
            "{}",
            fleet::progress(start.elapsed().as_secs(), &rows, &new_owned)
        );
        let mut books = Ok(());
        for epoch in new.iter().filter(|e| shown.insert(e.spec.epoch)) {
            println!("\n{}", fleet::epoch_summary(&epoch.spec));
            for reason in fleet::unexplained_unpaid(&epoch.spec, &sites).1 {
                println!("{reason}");
            }
            books = books.and(fleet::check_books(&epoch.spec).map(|_| ()));
            if new.last().map(|e| e.spec.epoch) == Some(epoch.spec.epoch) {
                // Nodes' lastEpochReward belongs to the latest epoch only.
                books = books.and(fleet::check_node_rewards(&epoch.spec, &paid_rows).map(|_| ()));
                println!("{}", depin_cli::render(&paid_rows, jiff::Timestamp::now()));
            }
        }
        if let Err(err) = books {
            if until.is_some() {
                break Err(err);
            }
            // The interactive demo reports a failed check loudly and keeps running: a
            // user poking at it must not lose the demo (or the cluster) to one check.
            eprintln!("\n!!! CHECK FAILED: {err:#}\n!!! the demo keeps running; Ctrl-C stops it\n");
        }
        let Some(want) = until else { continue };
        let idle: Vec<_> = fleet::accepted_by_kind(&rows)
            .into_iter()
            .filter(|(_, n)| *n == 0)
            .map(|(k, _)| k)
            .collect();
        let unpaid = new
            .last()
            .map(|e| fleet::unexplained_unpaid(&e.spec, &sites).0);
        if new.len() >= want && idle.is_empty() && unpaid.as_ref().is_some_and(|u| u.is_empty()) {
            println!(
                "\n{want}+ epochs closed, every kind proving and every pool paid (or empty for a stated physical reason); books balance"
            );
            break fleet::check_published(&client, &epochs, &rows)
                .await
                .map(|claims| {
                    println!(
                        "every manifest matches its RewardEpoch root; {claims} claims verify and tampered copies do not"
                    );
                });
        }
        let budget = SLACK + Duration::from_secs(60 * want as u64);
        if start.elapsed() > budget {
            break Err(anyhow::anyhow!(
                "after {} s: {} new epochs (want {want}); kinds without accepted proofs: {idle:?}; unpaid pools in the latest epoch: {unpaid:?}",
                start.elapsed().as_secs(),
                new.len()
            ));
        }
    };
    if until.is_none() {
        println!("\nremoving the demo fleet ...");
        fleet::remove(&client).await;
    }
    outcome
}

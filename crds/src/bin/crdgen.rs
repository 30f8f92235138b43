//! Writes one YAML file per CRD into the directory given (default: this crate's directory),
//! so `kubectl apply --server-side -f crds/` installs them all.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    for crd in depin_crds::all_crds() {
        let path = dir.join(depin_crds::crd_file_name(&crd));
        std::fs::write(&path, depin_crds::crd_yaml(&crd)?)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

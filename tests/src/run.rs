//! `TestRun`: one test's run directory (`target/e2e/<name>/`), its port block and the paths of
//! the tools it drives.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::ports::PortBlock;

/// Repository root (the workspace directory).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// `<repo>/target/e2e`, where every run directory lives.
pub fn e2e_root() -> PathBuf {
    repo_root().join("target").join("e2e")
}

/// The gateway binary: `$BARGEIN_GATEWAY_BIN` or `<repo>/target/release/bargein-gateway`.
pub fn gateway_bin() -> PathBuf {
    std::env::var_os("BARGEIN_GATEWAY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/release/bargein-gateway"))
}

/// The RTP peer binary: `$BARGEIN_RTP_PEER_BIN`, else `rtp_peer` next to the running
/// executable or one level up (integration tests run from `target/<profile>/deps/`).
pub fn rtp_peer_bin() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("BARGEIN_RTP_PEER_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut dir = exe.parent();
    for _ in 0..2 {
        let Some(d) = dir else { break };
        let candidate = d.join("rtp_peer");
        if candidate.is_file() {
            return Ok(candidate);
        }
        dir = d.parent();
    }
    Err(format!(
        "rtp_peer binary not found near {} (cargo build -p bargein-e2e --bins, or set BARGEIN_RTP_PEER_BIN)",
        exe.display()
    ))
}

/// Directory with the SIPp scenarios shipped with the tests.
pub fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

/// One test's workspace. Dropping it releases the port block; files stay for inspection.
#[derive(Debug)]
pub struct TestRun {
    name: String,
    dir: PathBuf,
    ports: PortBlock,
    peer_bin: PathBuf,
    seq: AtomicU32,
}

impl TestRun {
    /// Creates (and empties) `target/e2e/<name>/` and takes a port block. Panics with a clear
    /// message on failure: this is test setup.
    pub fn new(name: &str) -> TestRun {
        TestRun::try_new(name).unwrap_or_else(|e| panic!("e2e setup for {name}: {e}"))
    }

    pub fn try_new(name: &str) -> Result<TestRun, String> {
        let root = e2e_root();
        let dir = root.join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let ports = PortBlock::acquire(&root.join(".locks"))?;
        let peer_bin = rtp_peer_bin()?;
        Ok(TestRun {
            name: name.to_string(),
            dir,
            ports,
            peer_bin,
            seq: AtomicU32::new(0),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A path inside the run directory.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// A fresh, numbered sub-directory (`<prefix>-<n>`), e.g. one per SIPp run.
    pub fn subdir(&self, prefix: &str) -> PathBuf {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let dir = self.dir.join(format!("{prefix}-{n}"));
        // The run dir was just created empty, so only a full disk makes this fail; callers then
        // fail with the path in their own error when they write there.
        let _ = std::fs::create_dir_all(&dir);
        dir
    }

    pub fn ports(&self) -> &PortBlock {
        &self.ports
    }

    pub fn peer_bin(&self) -> &Path {
        &self.peer_bin
    }

    /// Caller speech (trimmed espeak-ng output, 8 kHz mono s16) in the run directory.
    pub fn caller_speech(&self) -> PathBuf {
        crate::audio::make_speech_wav(&self.dir, "caller", crate::audio::CALLER_TEXT)
            .unwrap_or_else(|e| panic!("generating caller speech: {e}"))
    }
}

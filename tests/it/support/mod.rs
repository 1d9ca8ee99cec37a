//! What the integration tests share: the test environment (a temporary folder and home, the
//! scripted model, the `nlah` command), scripted provider endpoints for the backends' own
//! tests, real git repositories with fixed history, `git fsck` of what nlah writes, and the
//! rules for tests that need parts from outside the crate.

pub mod cdp;
pub mod env;
pub mod fake_slurm;
pub mod fsck;
pub mod gitrepo;
pub mod model;
pub mod outside;
pub mod script;
pub mod viewer;

/// Synthetic ablation output folders with known answers (shared with `benches/report.rs`).
#[path = "../../fixtures/report/build.rs"]
pub mod report_build;

use std::net::SocketAddr;

pub use env::{Ran, TestEnv, output};
pub use fsck::{assert_fsck, assert_fsck_cells};
pub use model::{Answer, Turn, diligent};

/// Serves `app` on an ephemeral port of 127.0.0.1; returns `http://127.0.0.1:PORT` and the task.
/// Handlers may ask for the client's address (`ConnectInfo<SocketAddr>`).
pub async fn serve(app: axum::Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    (format!("http://{addr}"), task)
}

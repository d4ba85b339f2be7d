//! TLS with a client certificate, and AUTH, through the URL and config.

use std::time::Duration;

use raftlimit_client::{Client, ClientConfig, Limit, TlsSettings};
use raftlimit_testkit::{ClusterOptions, TlsOptions};

use crate::support::Env;

#[test]
fn rediss_with_client_certificate_and_password() {
    let env = Env::with(ClusterOptions {
        tls: Some(TlsOptions::default()),
        extra_toml: "requirepass = \"s3cret\"\n".into(),
        ..ClusterOptions::default()
    });
    let files = env.cluster.tls_files().unwrap().clone();
    let hosts: Vec<String> = (0..3)
        .map(|i| env.cluster.tls_addr(i).unwrap().to_string())
        .collect();
    let url = format!(
        "rediss://:s3cret@{}?ca={}&cert={}&key={}",
        hosts.join(","),
        files.ca().display(),
        files.client_cert().display(),
        files.client_key().display()
    );
    let config = ClientConfig::from_url(&url).unwrap();
    env.rt.block_on(async {
        let client = Client::connect(config.clone()).await.unwrap();
        assert!(client.leader().is_some());
        let d = client.check("tls:k", &Limit::per_second(2)).await.unwrap();
        assert!(d.allowed);

        // A wrong password is an error, not a retry loop.
        let mut wrong = config.clone();
        wrong.password = Some("nope".into());
        let err = Client::connect(wrong).await.unwrap_err();
        assert!(!err.is_unavailable(), "{err}");

        // Without the client certificate the server refuses the handshake.
        let mut no_cert = config.clone();
        no_cert.tls = Some(TlsSettings {
            ca_file: Some(files.ca()),
            cert_file: None,
            key_file: None,
        });
        no_cert.retry.budget = Duration::from_millis(500);
        assert!(Client::connect(no_cert).await.is_err());
    });
}

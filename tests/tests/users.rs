//! Users: the default user, replacing it through the config, logins over AMQP, MQTT and the
//! management API checked against the stored (argon2-hashed) users, and users surviving a
//! restart.

use lapin::{Connection, ConnectionProperties};
use tests::mqtt::{V4Client, V5Client, v4_options, v5_options};
use tests::{TestBroker, reply_code, within};

async fn amqp_login(
    broker: &TestBroker,
    user: &str,
    pass: &str,
) -> Result<Connection, lapin::Error> {
    let uri = format!("amqp://{user}:{pass}@{}/%2f", broker.addr());
    within(
        "AMQP login",
        Connection::connect(&uri, ConnectionProperties::default()),
    )
    .await
}

fn api_status(broker: &TestBroker, user: &str, pass: &str, path: &str) -> u16 {
    reqwest::blocking::Client::new()
        .get(format!("{}{path}", broker.http_url()))
        .basic_auth(user, Some(pass))
        .send()
        .expect("API reachable")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_user_replaced_by_config_and_kept_across_restarts() {
    let mut broker = TestBroker::start_with(|c| {
        c.default_user = "admin".into();
        c.default_pass = "s3cret".into();
    })
    .await;
    let conn = amqp_login(&broker, "admin", "s3cret")
        .await
        .expect("admin logs in");
    conn.close(200, "bye".into()).await.expect("close");
    // guest was not created, so it cannot log in (403 with authentication_failure_close).
    let err = amqp_login(&broker, "guest", "guest")
        .await
        .expect_err("no guest");
    assert_eq!(reply_code(&err), Some(403), "{err}");
    let err = amqp_login(&broker, "admin", "wrong")
        .await
        .expect_err("wrong password");
    assert_eq!(reply_code(&err), Some(403), "{err}");

    // MQTT 3.1.1 and 5.0 logins go through the same users.
    let mut opts = v4_options(broker.mqtt_addr(), "u-v4");
    opts.set_credentials("admin", "s3cret");
    let (client, _) = V4Client::connect(opts).await;
    client.disconnect().await;
    let mut opts = v4_options(broker.mqtt_addr(), "u-v4-bad");
    opts.set_credentials("admin", "nope");
    match V4Client::try_connect(opts).await {
        Err(rumqttc::ConnectionError::ConnectionRefused(code)) => {
            assert_eq!(code, rumqttc::ConnectReturnCode::BadUserNamePassword)
        }
        Err(e) => panic!("expected CONNACK 0x04, got {e:?}"),
        Ok(_) => panic!("a wrong password was accepted (3.1.1)"),
    }
    let mut opts = v5_options(broker.mqtt_addr(), "u-v5-bad");
    opts.set_credentials("guest", "guest");
    match V5Client::try_connect(opts).await {
        Err(rumqttc::v5::ConnectionError::ConnectionRefused(code)) => {
            assert_eq!(
                code,
                rumqttc::v5::mqttbytes::v5::ConnectReturnCode::BadUserNamePassword
            )
        }
        Err(e) => panic!("expected CONNACK 0x86, got {e:?}"),
        Ok(_) => panic!("guest was accepted though it was never created (5.0)"),
    }

    // The management API too.
    let url_broker = &broker;
    let (ok, bad) = tokio::task::block_in_place(|| {
        (
            api_status(url_broker, "admin", "s3cret", "/api/whoami"),
            api_status(url_broker, "admin", "wrong", "/api/whoami"),
        )
    });
    assert_eq!((ok, bad), (200, 401));

    // After a restart with other defaults, the stored user is still there and no new
    // default user is created (users exist).
    broker.restart().await;
    let conn = amqp_login(&broker, "admin", "s3cret")
        .await
        .expect("admin after restart");
    conn.close(200, "bye".into()).await.expect("close");
    let err = amqp_login(&broker, "guest", "guest")
        .await
        .expect_err("still no guest");
    assert_eq!(reply_code(&err), Some(403), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_are_stored_hashed() {
    let broker = TestBroker::start_with(|c| {
        c.default_user = "admin".into();
        c.default_pass = "plain-text-marker".into();
    })
    .await;
    let text = tokio::task::block_in_place(|| {
        reqwest::blocking::Client::new()
            .get(format!("{}/api/whoami", broker.http_url()))
            .basic_auth("admin", Some("plain-text-marker"))
            .send()
            .expect("API")
            .text()
            .expect("body")
    });
    assert!(text.contains("administrator"), "{text}");
    // Nothing under the data directory contains the password in plain text.
    let mut found = false;
    for entry in walk(broker.data_dir()) {
        if let Ok(bytes) = std::fs::read(&entry)
            && bytes.windows(17).any(|w| w == b"plain-text-marker")
        {
            found = true;
        }
    }
    assert!(!found, "the password is stored in plain text");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

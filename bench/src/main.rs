//! `loadgen`: see `loadgen --help` and `docs/BENCHMARKS.md`.

use anyhow::Context as _;
use bench::cli::{Cli, Command};
use bench::{Report, null_sink, scenario};
use clap::Parser as _;

fn print(report: &Report, json: bool) {
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{report}");
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Amqp(o) => {
            let r = scenario::amqp::run(&o).await.context("amqp scenario")?;
            print(&r, o.common.json);
        }
        Command::Mqtt(o) => {
            let r = scenario::mqtt::run(&o).await.context("mqtt scenario")?;
            print(&r, o.common.json);
        }
        Command::Conns(o) => {
            let r = scenario::conns::run(&o).await.context("conns scenario")?;
            print(&r, o.json);
        }
        Command::NullSink(o) => {
            let port = |p: u16| (p != 0).then_some(p);
            let (amqp, mqtt) = null_sink::start(&o.bind, port(o.amqp_port), port(o.mqtt_port))
                .await
                .context("start the null sink")?;
            eprintln!("null-sink: amqp on {amqp:?}, mqtt on {mqtt:?}; Ctrl-C to stop");
            tokio::signal::ctrl_c().await.context("wait for Ctrl-C")?;
        }
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the tokio runtime")?
        .block_on(run(cli))
}

//! Collectives between real processes on loopback: this binary spawns copies of itself as the
//! ranks (with torchrun's environment variables) and checks what each one computed.

use std::process::{Child, Command, ExitCode};
use std::time::{Duration, Instant};

use metaspatial_dist::{Backend, Launch, ProcessGroup, ReduceOp};
use tch::{Kind, Tensor};

/// Names the scenario a spawned rank plays.
const SCENARIO: &str = "METASPATIAL_DIST_SCENARIO";

/// Collective timeout of the fault scenario.
const FAULT_TIMEOUT: Duration = Duration::from_secs(4);

fn main() -> ExitCode {
    if let Ok(scenario) = std::env::var(SCENARIO) {
        return match rank_main(&scenario) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("{message}");
                ExitCode::FAILURE
            }
        };
    }
    // `cargo test` passes filters and flags meant for the libtest harness; a listing must
    // list nothing.
    if std::env::args().any(|a| a == "--list") {
        return ExitCode::SUCCESS;
    }
    let mut failed = 0;
    for (name, result) in [
        ("collectives, 2 ranks", collectives(2)),
        ("collectives, 3 ranks", collectives(3)),
        ("a rank dies before an all_reduce", dead_rank()),
    ] {
        match result {
            Ok(()) => println!("test {name} ... ok"),
            Err(message) => {
                println!("test {name} ... FAILED\n{message}");
                failed += 1;
            }
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A port free on loopback now (the ranks bind it a moment later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn spawn(scenario: &str, world: usize) -> Vec<Child> {
    let port = free_port().to_string();
    let exe = std::env::current_exe().expect("the test binary's path");
    (0..world)
        .map(|rank| {
            Command::new(&exe)
                .env(SCENARIO, scenario)
                .env("RANK", rank.to_string())
                .env("LOCAL_RANK", rank.to_string())
                .env("WORLD_SIZE", world.to_string())
                .env("MASTER_ADDR", "127.0.0.1")
                .env("MASTER_PORT", &port)
                .env_remove("TORCHELASTIC_USE_AGENT_STORE")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawning a rank")
        })
        .collect()
}

/// Waits for every rank (killing the stragglers after a minute); returns each one's exit code
/// and stderr.
fn wait_all(children: Vec<Child>) -> Vec<(Option<i32>, String)> {
    let deadline = Instant::now() + Duration::from_mins(1);
    children
        .into_iter()
        .map(|mut child| {
            while child.try_wait().expect("polling a rank").is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let out = child.wait_with_output().expect("a rank's output");
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
        .collect()
}

fn collectives(world: usize) -> Result<(), String> {
    let results = wait_all(spawn("collectives", world));
    for (rank, (code, stderr)) in results.iter().enumerate() {
        if *code != Some(0) {
            return Err(format!("rank {rank} exited with {code:?}: {stderr}"));
        }
    }
    Ok(())
}

fn dead_rank() -> Result<(), String> {
    let start = Instant::now();
    let results = wait_all(spawn("die", 3));
    let elapsed = start.elapsed();
    if results[2].0 != Some(3) {
        return Err(format!("the dying rank exited with {:?}", results[2].0));
    }
    for (rank, (code, stderr)) in results.iter().take(2).enumerate() {
        if *code != Some(0) {
            return Err(format!("survivor {rank} exited with {code:?}: {stderr}"));
        }
    }
    // The timeout, the diagnosis window and start-up, with room for a loaded machine.
    if elapsed > FAULT_TIMEOUT * 2 + Duration::from_secs(20) {
        return Err(format!("the survivors took {elapsed:?} to give up"));
    }
    Ok(())
}

fn rank_main(scenario: &str) -> Result<(), String> {
    let Launch::Ranks(env) = Launch::from_env().map_err(|e| e.to_string())? else {
        return Err("spawned without a world".to_owned());
    };
    let timeout = if scenario == "die" {
        FAULT_TIMEOUT
    } else {
        Duration::from_secs(30)
    };
    let group = env
        .connect(Backend::Gloo, timeout)
        .map_err(|e| e.to_string())?;
    match scenario {
        "collectives" => check_collectives(&group),
        "die" => die(&group),
        other => Err(format!("unknown scenario {other}")),
    }
}

fn values(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.flatten(0, -1)).expect("f32 values")
}

fn expect(what: &str, got: &Tensor, want: &[f32]) -> Result<(), String> {
    let got = values(got);
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

fn check_collectives(group: &ProcessGroup) -> Result<(), String> {
    let rank = group.rank() as f32;
    let world = group.world();
    let n = world as f32;
    let err = |e: metaspatial_dist::Error| e.to_string();
    let mine = || Tensor::from_slice(&[rank + 1.0, 10.0 * (rank + 1.0)]);
    let sum: f32 = (1..=world).map(|r| r as f32).sum();

    let mut t = mine();
    group.all_reduce(&mut t, ReduceOp::Sum).map_err(err)?;
    expect("all_reduce sum", &t, &[sum, 10.0 * sum])?;
    let mut t = mine();
    group.all_reduce(&mut t, ReduceOp::Avg).map_err(err)?;
    expect("all_reduce avg", &t, &[sum / n, 10.0 * sum / n])?;
    let mut t = mine();
    group.all_reduce(&mut t, ReduceOp::Max).map_err(err)?;
    expect("all_reduce max", &t, &[n, 10.0 * n])?;
    let mut t = mine();
    group.all_reduce(&mut t, ReduceOp::Min).map_err(err)?;
    expect("all_reduce min", &t, &[1.0, 10.0])?;

    let root = world - 1;
    let mut t = Tensor::full([3], f64::from(rank), (Kind::Float, tch::Device::Cpu));
    group.broadcast(&mut t, root).map_err(err)?;
    expect("broadcast", &t, &[root as f32; 3])?;

    let gathered = group.all_gather(&mine()).map_err(err)?;
    for (r, t) in gathered.iter().enumerate() {
        let r = r as f32;
        expect(&format!("all_gather[{r}]"), t, &[r + 1.0, 10.0 * (r + 1.0)])?;
    }

    // Rank r contributes r·100 + i at position i; this rank keeps rows [2·rank, 2·rank + 2).
    let input = Tensor::arange((2 * world) as i64, (Kind::Float, tch::Device::Cpu))
        + 100.0 * f64::from(rank);
    let rank_sum: f32 = (0..world).map(|r| 100.0 * r as f32).sum();
    let first = 2.0 * rank;
    let out = group.reduce_scatter(&input, ReduceOp::Sum).map_err(err)?;
    expect(
        "reduce_scatter sum",
        &out,
        &[n * first + rank_sum, n * (first + 1.0) + rank_sum],
    )?;
    let err_shape = group
        .reduce_scatter(
            &Tensor::zeros([2 * world as i64 + 1], (Kind::Float, tch::Device::Cpu)),
            ReduceOp::Sum,
        )
        .map(drop);
    if !matches!(err_shape, Err(metaspatial_dist::Error::Invalid(_))) {
        return Err(format!(
            "reduce_scatter of an unsplittable tensor: {err_shape:?}"
        ));
    }

    group.barrier().map_err(err)
}

/// Rank 2 leaves after the barrier; the others must fail their `all_reduce` naming it.
fn die(group: &ProcessGroup) -> Result<(), String> {
    group.barrier().map_err(|e| e.to_string())?;
    if group.rank() == 2 {
        std::process::exit(3);
    }
    let mut t = Tensor::ones([4], (Kind::Float, tch::Device::Cpu));
    let start = Instant::now();
    match group.all_reduce(&mut t, ReduceOp::Sum) {
        Ok(()) => Err("the all_reduce succeeded without rank 2".to_owned()),
        Err(e) => {
            let message = e.to_string();
            let elapsed = start.elapsed();
            let named = message.contains("all_reduce")
                && message.contains(&format!("on rank {} of 3", group.rank()))
                && message.contains("rank 2 did not report");
            if named && elapsed < FAULT_TIMEOUT * 3 {
                Ok(())
            } else {
                Err(format!("after {elapsed:?}: {message}"))
            }
        }
    }
}

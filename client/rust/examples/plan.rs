//! Plans a 70B model at INT8 on two 80 GB GPUs.
//!
//!     cargo run --example plan -- [--server HOST:PORT] [--token T] [--ca ca.pem] [--cert c.pem --key k.pem]
use std::time::Duration;

use accelplan::v1::{
    model_spec, Accelerator, AcceleratorType, Fleet, ModelSpec, PlanShardingRequest, QuantizationLevel,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut builder = accelplan::Client::builder(arg("--server").unwrap_or_else(|| accelplan::DEFAULT_TARGET.into()))
        .timeout(Duration::from_secs(5));
    if let Some(token) = arg("--token") {
        builder = builder.bearer_token(token);
    }
    #[cfg(feature = "tls")]
    {
        if let Some(ca) = arg("--ca") {
            builder = builder.ca_certificate(std::fs::read(ca)?);
        }
        if let (Some(cert), Some(key)) = (arg("--cert"), arg("--key")) {
            builder = builder.identity(std::fs::read(cert)?, std::fs::read(key)?);
        }
    }
    let client = builder.connect().await?;

    let gpu = |device_id| Accelerator {
        r#type: AcceleratorType::CudaGpu as i32,
        device_id,
        memory_bytes: 80_000_000_000,
        ..Default::default()
    };
    let request = PlanShardingRequest {
        model: Some(ModelSpec {
            source: Some(model_spec::Source::ParameterCount(70_000_000_000)),
        }),
        quantization: QuantizationLevel::Int8 as i32,
        fleet: Some(Fleet {
            accelerators: vec![gpu(0), gpu(1)],
            interconnects: vec![],
        }),
    };
    match client.plan_sharding(request).await {
        Ok(plan) => println!(
            "{:?} over {} devices, fits: {}",
            plan.strategy(),
            plan.device_count,
            plan.fits_in_memory
        ),
        Err(err) => {
            eprintln!("{:?}: {}", err.code(), err.message());
            for v in err.field_violations() {
                eprintln!("  {}: {}", v.field, v.description);
            }
            std::process::exit(1);
        }
    }
    Ok(())
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

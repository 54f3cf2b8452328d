//! A bare hyper HTTP/1.1 server that answers every request with one constant
//! XML-RPC response: the ceiling any XML-RPC server on hyper can reach, used as
//! the baseline in `bench/xmlrpc.sh`.

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Response;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(about = "Constant-reply HTTP server (benchmark baseline)")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
}

const REPLY: &str = "<?xml version=\"1.0\"?>\n<methodResponse><params><param><value><int>3</int></value></param></params></methodResponse>\n";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind(&args.listen).await?;
    println!("listening on http://{}/", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(|req: hyper::Request<hyper::body::Incoming>| async {
                // Read the request body, as any POST endpoint must.
                let _ = req.into_body().collect().await;
                let mut resp = Response::new(Full::new(Bytes::from_static(REPLY.as_bytes())));
                resp.headers_mut()
                    .insert("content-type", "text/xml".parse().expect("static header"));
                Ok::<_, Infallible>(resp)
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

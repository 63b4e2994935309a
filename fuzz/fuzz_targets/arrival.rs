//! What a relay listener reads before the channel starts, from anyone on the network: the
//! first bytes it sniffs, a PROXY protocol v1/v2 header, a WebSocket upgrade request head and
//! its forwarding headers; and what a client parses from its flags and environment: route
//! lists, proxy URLs and NO_PROXY. Any bytes give an answer or a clear error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sightline_net::proxy::no_proxy::NoProxy;
use sightline_net::proxy::ProxyUrl;
use sightline_net::route::RouteList;
use sightline_relay::net::{forwarded, proxy_header, sniff};

fuzz_target!(|data: &[u8]| {
    let _ = sniff::sniff(data, true);
    let _ = sniff::sniff(data, false);
    let _ = proxy_header::parse(data);
    if let Ok(Some(head)) = forwarded::head(data) {
        let trusted: Vec<ipnet::IpNet> = "127.0.0.0/8".parse().into_iter().collect();
        let xff: Vec<&str> = head.xff.iter().map(String::as_str).collect();
        let fwd: Vec<&str> = head.forwarded.iter().map(String::as_str).collect();
        let _ = forwarded::client(&xff, &fwd, &trusted);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = text.parse::<RouteList>();
        let _ = text.parse::<ProxyUrl>();
        let _ = NoProxy::parse(text).matches("relay.example");
        let _ = NoProxy::parse(text).matches("10.1.2.3");
    }
});

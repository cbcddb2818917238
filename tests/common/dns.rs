//! A DNS server on loopback for the tests: hickory-server's authoritative
//! catalog with in-memory zones the test writes, plus names that answer
//! SERVFAIL and names that never answer. It binds 127.0.0.1 on a free port
//! (UDP and TCP), and logs every question so a test can check what was asked.
//!
//! Tests always pass `--resolver` with its address: nothing ever asks the
//! machine's own resolver.

use hickory_server::net::runtime::{Time, TokioRuntimeProvider};
use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::rdata::{A, AAAA, MX, NS, PTR, SOA, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, MessageResponseBuilder, ZoneType};
use hickory_server::Server;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};

fn name(s: &str) -> Name {
    let s = if s.ends_with('.') {
        s.to_string()
    } else {
        format!("{s}.")
    };
    Name::from_ascii(&s).unwrap_or_else(|e| panic!("bad test name {s}: {e}"))
}

/// The reversed-address name of `ip` (`4.3.2.1.in-addr.arpa`-style labels)
/// under `zone`.
pub fn reversed_under(ip: IpAddr, zone: &str) -> String {
    let labels = match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}")
        }
        IpAddr::V6(v6) => v6
            .octets()
            .iter()
            .rev()
            .flat_map(|b| [b & 0x0f, b >> 4])
            .map(|n| format!("{n:x}"))
            .collect::<Vec<_>>()
            .join("."),
    };
    format!("{labels}.{zone}")
}

/// The zones and special names of a test server.
#[derive(Default)]
pub struct Zones {
    zones: Vec<String>,
    records: Vec<(String, RData)>,
    servfail: Vec<String>,
    silent: Vec<String>,
}

impl Zones {
    pub fn new() -> Zones {
        Zones::default()
    }

    /// An authoritative zone (with its SOA and NS).
    pub fn zone(mut self, origin: &str) -> Zones {
        self.zones.push(origin.to_string());
        self
    }

    pub fn record(mut self, owner: &str, data: RData) -> Zones {
        self.records.push((owner.to_string(), data));
        self
    }

    pub fn mx(self, owner: &str, preference: u16, exchange: &str) -> Zones {
        self.record(owner, RData::MX(MX::new(preference, name(exchange))))
    }

    pub fn addr(self, owner: &str, ip: IpAddr) -> Zones {
        match ip {
            IpAddr::V4(v4) => self.record(owner, RData::A(A(v4))),
            IpAddr::V6(v6) => self.record(owner, RData::AAAA(AAAA(v6))),
        }
    }

    pub fn txt(self, owner: &str, text: &str) -> Zones {
        self.record(owner, RData::TXT(TXT::new(vec![text.to_string()])))
    }

    /// A PTR record for `ip` (its zone, e.g. `2.0.192.in-addr.arpa`, must exist).
    pub fn ptr(self, ip: IpAddr, target: &str) -> Zones {
        let arpa = match ip {
            IpAddr::V4(_) => reversed_under(ip, "in-addr.arpa"),
            IpAddr::V6(_) => reversed_under(ip, "ip6.arpa"),
        };
        self.record(&arpa, RData::PTR(PTR(name(target))))
    }

    /// `ip` listed on the blocklist `zone` with `code`, and why.
    pub fn listed(self, zone: &str, ip: IpAddr, code: [u8; 4], reason: &str) -> Zones {
        let owner = reversed_under(ip, zone);
        self.record(&owner, RData::A(A(code.into())))
            .txt(&owner, reason)
    }

    /// Every name under `zone` answers SERVFAIL.
    pub fn servfail(mut self, zone: &str) -> Zones {
        self.servfail.push(zone.to_string());
        self
    }

    /// Every question about a name under `zone` goes unanswered.
    pub fn silent(mut self, zone: &str) -> Zones {
        self.silent.push(zone.to_string());
        self
    }

    fn catalog(&self) -> Catalog {
        let mut catalog = Catalog::new();
        for origin in &self.zones {
            let origin_name = name(origin);
            let mut zone = InMemoryZoneHandler::<TokioRuntimeProvider>::empty(
                origin_name.clone(),
                ZoneType::Primary,
                AxfrPolicy::Deny,
            );
            let ns = name(&format!("ns.{origin}"));
            let soa = SOA::new(
                ns.clone(),
                name(&format!("hostmaster.{origin}")),
                1,
                3600,
                600,
                86400,
                60,
            );
            zone.upsert_mut(
                Record::from_rdata(origin_name.clone(), 3600, RData::SOA(soa)),
                1,
            );
            zone.upsert_mut(
                Record::from_rdata(origin_name.clone(), 3600, RData::NS(NS(ns))),
                1,
            );
            let lower = LowerName::new(&origin_name);
            for (owner, data) in &self.records {
                let owner = name(owner);
                // Each record goes to the innermost zone that holds it.
                let best = self
                    .zones
                    .iter()
                    .map(|z| name(z))
                    .filter(|z| z.zone_of(&owner))
                    .max_by_key(|z| z.num_labels());
                if best.as_ref() == Some(&origin_name) {
                    assert!(
                        zone.upsert_mut(Record::from_rdata(owner, 60, data.clone()), 1),
                        "record refused by the zone"
                    );
                }
            }
            catalog.upsert(lower, vec![Arc::new(zone)]);
        }
        catalog
    }
}

struct Handler {
    catalog: Catalog,
    servfail: Vec<LowerName>,
    silent: Vec<LowerName>,
    log: Arc<Mutex<Vec<String>>>,
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let Ok(info) = request.request_info() else {
            return self
                .catalog
                .handle_request::<R, T>(request, response_handle)
                .await;
        };
        let qname = info.query.name().clone();
        self.log
            .lock()
            .unwrap()
            .push(format!("{} {}", qname, info.query.query_type()));
        if self.silent.iter().any(|z| z.zone_of(&qname)) {
            // Never answer: the client must time out. (Bounded, so the
            // task ends by itself.)
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        if self.servfail.iter().any(|z| z.zone_of(&qname)) {
            let response = MessageResponseBuilder::from_message_request(request)
                .error_msg(&request.metadata, ResponseCode::ServFail);
            return response_handle
                .send_response(response)
                .await
                .expect("send SERVFAIL");
        }
        self.catalog
            .handle_request::<R, T>(request, response_handle)
            .await
    }
}

/// A running test DNS server. Dropping it stops the server.
pub struct TestDns {
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    rt: Option<tokio::runtime::Runtime>,
}

impl TestDns {
    pub fn start(zones: Zones) -> TestDns {
        Self::start_on(zones, "127.0.0.1:0")
    }

    /// Start on `bind` (a loopback address; port 0 for a free one), UDP and
    /// TCP on the same port.
    pub fn start_on(zones: Zones, bind: &str) -> TestDns {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let handler = Handler {
            catalog: zones.catalog(),
            servfail: zones
                .servfail
                .iter()
                .map(|z| LowerName::new(&name(z)))
                .collect(),
            silent: zones
                .silent
                .iter()
                .map(|z| LowerName::new(&name(z)))
                .collect(),
            log: log.clone(),
        };
        // Set up on a thread of its own, so a test may start the server from
        // inside its own runtime too.
        let start = async {
            // One port for UDP and TCP: retry when TCP's is taken.
            let mut sockets = None;
            for _ in 0..20 {
                let udp = UdpSocket::bind(bind).await.expect("bind udp");
                let addr = udp.local_addr().expect("udp addr");
                if let Ok(tcp) = TcpListener::bind(addr).await {
                    sockets = Some((udp, tcp, addr));
                    break;
                }
            }
            let (udp, tcp, addr) = sockets.expect("a free port for the test DNS server");
            let mut server = Server::new(handler);
            server.register_socket(udp);
            server.register_listener(tcp, Duration::from_secs(5), 65535);
            tokio::spawn(async move {
                let _ = server.block_until_done().await;
            });
            addr
        };
        let addr = std::thread::scope(|s| {
            s.spawn(|| rt.block_on(start))
                .join()
                .expect("test DNS server starts")
        });
        TestDns {
            addr,
            log,
            rt: Some(rt),
        }
    }

    /// `--resolver` for the binary.
    pub fn resolver_arg(&self) -> String {
        self.addr.to_string()
    }

    /// Every question asked so far, as `name. TYPE`.
    pub fn questions(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// The blocklist zone of the test server.
pub const BL_ZONE: &str = "bl.lab.example";
/// Addresses in the test zones that are only ever looked up, never dialled
/// (documentation ranges, RFC 5737 / RFC 3849).
pub const DOC_LISTED: &str = "192.0.2.99";
pub const DOC_CLEAN: &str = "192.0.2.98";
pub const DOC_PTR: &str = "192.0.2.25";
pub const DOC_LISTED_V6: &str = "2001:db8::99";
pub const DOC_PTR_V6: &str = "2001:db8::25";

/// The test world: `lab.example` with MX hosts at `mx1` and `mx2` (the lab's
/// loopback addresses), a null-MX domain, a domain without MX (implicit MX),
/// one with neither MX nor address, one whose first exchanger does not
/// exist; PTR records for documentation addresses; a blocklist zone listing
/// `mx1` and documentation addresses; `broken.example` (SERVFAIL) and
/// `slow.example` (never answers).
pub fn lab_world(mx1: IpAddr, mx2: IpAddr) -> Zones {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    Zones::new()
        .zone("lab.example")
        .zone("2.0.192.in-addr.arpa")
        .zone("8.b.d.0.1.0.0.2.ip6.arpa")
        .mx("lab.example", 20, "mx2.lab.example")
        .mx("lab.example", 10, "mx1.lab.example")
        .addr("mx1.lab.example", mx1)
        .addr("mx2.lab.example", mx2)
        .mx("nullmx.lab.example", 0, ".")
        .addr("implicit.lab.example", mx1)
        .txt("empty.lab.example", "no mail here")
        .mx("dangling.lab.example", 10, "gone.lab.example")
        .mx("dangling.lab.example", 20, "mx2.lab.example")
        .listed(
            BL_ZONE,
            mx1,
            [127, 0, 0, 2],
            "open relay, see https://bl.lab.example/lookup",
        )
        .listed(BL_ZONE, ip(DOC_LISTED), [127, 0, 0, 4], "spam trap hits")
        .listed(
            BL_ZONE,
            ip(DOC_LISTED_V6),
            [127, 0, 0, 3],
            "listed over IPv6",
        )
        .ptr(ip(DOC_PTR), "mail.lab.example")
        .ptr(ip(DOC_PTR_V6), "mail6.lab.example")
        .servfail("broken.example")
        .silent("slow.example")
}

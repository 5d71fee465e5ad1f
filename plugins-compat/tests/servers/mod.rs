//! Real servers on 127.0.0.1 for the HTTP and TLS tests: Python's
//! http.server, plain or wrapped in Python's ssl with a certificate chain
//! made here (rcgen), and a listener that accepts and never answers.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use time::OffsetDateTime;

/// http.server with a few fixed answers besides the files of its
/// directory: `/status/NNN` answers that status, `/redirect` a 301.
const SERVER: &str = r#"
import functools, http.server, ssl, sys

class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/status/"):
            code = int(self.path[len("/status/"):])
            # No body where HTTP allows none, as a correct server does.
            body = b"" if code in (204, 304) else ("status %d\n" % code).encode()
            self.send_response(code)
            if body:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/redirect":
            self.send_response(301)
            self.send_header("Location", "/health.txt")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            super().do_GET()

    def log_message(self, *args):
        pass

directory = sys.argv[1]
server = http.server.ThreadingHTTPServer(
    ("127.0.0.1", 0), functools.partial(Handler, directory=directory))
if len(sys.argv) > 2:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[2], sys.argv[3])
    # The handshake happens in the request's thread, not in accept.
    server.socket = context.wrap_socket(
        server.socket, server_side=True, do_handshake_on_connect=False)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// A running Python server; killed when dropped.
pub struct PyServer {
    child: Child,
    pub port: u16,
}

impl PyServer {
    /// Plain HTTP, serving `dir`.
    pub fn http(dir: &Path) -> PyServer {
        PyServer::start(dir, None)
    }

    /// HTTPS with `cert` (the leaf, PEM) and `key`.
    pub fn https(dir: &Path, cert: &Path, key: &Path) -> PyServer {
        PyServer::start(dir, Some((cert, key)))
    }

    fn start(dir: &Path, tls: Option<(&Path, &Path)>) -> PyServer {
        let mut command = Command::new("python3");
        command.arg("-c").arg(SERVER).arg(dir);
        if let Some((cert, key)) = tls {
            command.arg(cert).arg(key);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 is needed for the HTTP server (.ci/run installs it)");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("the server's port");
        let port = line.trim().parse().unwrap_or_else(|_| panic!("no port from python: {line:?}"));
        PyServer { child, port }
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that accepts connections (the kernel completes the handshake)
/// where nobody ever reads or writes, kept open while this lives.
pub fn silent_port() -> (TcpListener, u16) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port()
}

/// A test CA and leaf certificates it signs, as PEM files in `dir`.
pub struct Pki {
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
    /// The CA's certificate, for `--ca-file`.
    pub ca: PathBuf,
}

/// A leaf certificate and its key, as files.
pub struct Leaf {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "Monchero Test CA");
        let cert = params.self_signed(&key).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, cert.pem()).unwrap();
        Pki { dir: dir.to_owned(), issuer: Issuer::new(params, key), ca }
    }

    /// A leaf for `localhost` and 127.0.0.1, valid from a day ago until
    /// `not_after`, written as `NAME.pem` and `NAME.key`.
    pub fn leaf(&self, name: &str, not_after: OffsetDateTime) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, "localhost");
        params.not_before = OffsetDateTime::now_utc() - time::Duration::days(30);
        params.not_after = not_after;
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let leaf = Leaf {
            cert: self.dir.join(format!("{name}.pem")),
            key: self.dir.join(format!("{name}.key")),
        };
        std::fs::write(&leaf.cert, cert.pem()).unwrap();
        std::fs::write(&leaf.key, key.serialize_pem()).unwrap();
        leaf
    }
}

/// A time `days` days (and an hour, so that whole days count as in
/// `check_http`, away from a day's boundary) from now.
pub fn in_days(days: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::days(days) + time::Duration::hours(1)
}

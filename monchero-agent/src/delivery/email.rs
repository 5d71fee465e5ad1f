//! The email notifier: a plain-text mail through an SMTP server or a local
//! sendmail, with lettre on rustls.
//!
//! The password is read from `password_file` at each send, so it is never
//! kept in the config, the state or a log, and rotating it needs no reload.
//! An SMTP 5xx reply fails the delivery for good; anything else (no
//! connection, 4xx, a sendmail that exits non-zero) is retried.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSendmailTransport, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use monchero_core::event::Event;
use monchero_core::template::Escape;

use super::Attempt;
use crate::config::{EmailConfig, MailTransport, SmtpConfig, SmtpTls};

/// A configured mail notifier.
#[derive(Debug)]
pub struct Mailer {
    config: EmailConfig,
    /// The name the agent greets the SMTP server with (EHLO).
    host: String,
    timeout: Duration,
}

impl Mailer {
    /// The notifier for `config`, sending as `host`, each mail within
    /// `timeout`.
    pub fn new(config: EmailConfig, host: &str, timeout: Duration) -> Mailer {
        Mailer { config, host: host.to_owned(), timeout }
    }

    /// One attempt to deliver `event`.
    pub async fn send(&self, event: &Event) -> Attempt {
        let message = match self.message(event) {
            Ok(message) => message,
            Err(error) => return Attempt::Permanent(error),
        };
        let sent = match &self.config.transport {
            MailTransport::Smtp(smtp) => {
                let transport = match self.smtp(smtp).await {
                    Ok(transport) => transport,
                    Err(attempt) => return attempt,
                };
                // lettre's timeout is per command; this one is for the mail.
                match tokio::time::timeout(self.timeout, transport.send(message)).await {
                    Ok(sent) => sent.map(|response| {
                        let first = response.message().next().unwrap_or_default().to_owned();
                        format!("SMTP {} {first}", response.code())
                    }),
                    Err(_) => {
                        let summary = format!(
                            "SMTP: no answer within {}",
                            humantime::format_duration(self.timeout)
                        );
                        return Attempt::Retry { summary, after: None };
                    }
                }
            }
            MailTransport::Sendmail(program) => {
                let transport = AsyncSendmailTransport::<Tokio1Executor>::new_with_command(program);
                let sent = tokio::time::timeout(self.timeout, transport.send(message)).await;
                return match sent {
                    Ok(Ok(())) => Attempt::Delivered(format!("handed to {}", program.display())),
                    Ok(Err(error)) => Attempt::Retry {
                        summary: format!("{} failed: {error}", program.display()),
                        after: None,
                    },
                    Err(_) => Attempt::Retry {
                        summary: format!("{} timed out", program.display()),
                        after: None,
                    },
                };
            }
        };
        match sent {
            Ok(summary) => Attempt::Delivered(summary),
            Err(error) if error.is_permanent() => {
                Attempt::Permanent(format!("the SMTP server refused the mail: {error}"))
            }
            Err(error) => Attempt::Retry { summary: format!("SMTP: {error}"), after: None },
        }
    }

    fn message(&self, event: &Event) -> Result<Message, String> {
        let mailbox = |text: &str| {
            text.parse::<Mailbox>().map_err(|error| format!("bad address {text:?}: {error}"))
        };
        // A subject is one line; a summary may not be.
        let subject: String = self
            .config
            .subject
            .render(event, Escape::None)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let mut builder = Message::builder().from(mailbox(&self.config.from)?).subject(subject);
        for to in &self.config.to {
            builder = builder.to(mailbox(to)?);
        }
        builder
            .header(ContentType::TEXT_PLAIN)
            .body(self.config.body.render(event, Escape::None))
            .map_err(|error| format!("cannot build the mail: {error}"))
    }

    async fn smtp(&self, smtp: &SmtpConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, Attempt> {
        let retry = |summary: String| Attempt::Retry { summary, after: None };
        let tls = |wrap: fn(TlsParameters) -> Tls| {
            TlsParameters::new(smtp.host.clone())
                .map(wrap)
                .map_err(|error| retry(format!("cannot set up TLS: {error}")))
        };
        let tls = match smtp.tls {
            SmtpTls::Implicit => tls(Tls::Wrapper)?,
            SmtpTls::Required => tls(Tls::Required)?,
            SmtpTls::Opportunistic => tls(Tls::Opportunistic)?,
            SmtpTls::Never => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
            .port(smtp.port)
            .tls(tls)
            .timeout(Some(self.timeout))
            .hello_name(ClientId::Domain(self.host.clone()));
        if let (Some(username), Some(path)) = (&smtp.username, &smtp.password_file) {
            let password = tokio::fs::read_to_string(path).await.map_err(|error| {
                retry(format!("cannot read password_file {}: {error}", path.display()))
            })?;
            let password = password.lines().next().unwrap_or_default().to_owned();
            builder = builder.credentials(Credentials::new(username.clone(), password));
        }
        Ok(builder.build())
    }
}

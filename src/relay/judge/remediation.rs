//! How to fix a finding, in the terms of the software that was detected.
//! Pure data: (finding, software) → one short paragraph. The IIS advice
//! follows Microsoft's guide to stopping IIS SMTP from relaying; the rest use
//! each MTA's own settings. A product without specific advice gets the
//! general rule.

use super::finding::FindingId;
use super::fingerprint::Software;

/// The advice for an open relay proven through an address trick (a
/// percent hack, a bang path, a source route) rather than a plain foreign
/// recipient: the relay restrictions are right, the address rewriting
/// behind them is not, on this server or on the one it hands mail to (a
/// backup MX's primary).
pub fn trick_advice(software: Software) -> Option<&'static str> {
    match software {
        Software::Postfix => Some(
            "Postfix: an address trick reached a foreign domain. On this server and on every \
             server it hands mail to (a backup MX's primary): allow_percent_hack = no, \
             swap_bangpath = no, allow_untrusted_routing = no (the default); a backup MX should \
             accept only recipients that exist (relay_recipient_maps), and a primary should not \
             let its backup MX relay by address (mynetworks); `postfix reload`.",
        ),
        other => advice(FindingId::PossibleRelay, other),
    }
}

/// The advice for a finding on a server running `software`.
pub fn advice(finding: FindingId, software: Software) -> Option<&'static str> {
    use FindingId as F;
    use Software as S;
    let text = match (finding, software) {
        // --- unauthenticated relay ---------------------------------------------------
        (F::OpenRelay | F::PossibleRelay, S::IisSmtp) => {
            "IIS Manager → the SMTP virtual server → Properties → Access tab → Relay…: select \
             \"Only the list below\", list only the computers, subnets or domains that may relay, \
             and keep \"Allow all computers which successfully authenticate to relay, regardless \
             of the list above\" checked. On a server that only relays for your own clients also \
             open Access tab → Authentication… and clear \"Anonymous access\", keeping Basic \
             and/or Integrated Windows Authentication."
        }
        (F::OpenRelay | F::PossibleRelay, S::Exchange) => {
            "Exchange: remove the relay right from anonymous users on the receive connector \
             that answers here: Get-ReceiveConnector \"<server>\\<connector>\" | Remove-ADPermission \
             -User \"NT AUTHORITY\\ANONYMOUS LOGON\" -ExtendedRights \"Ms-Exch-SMTP-Accept-Any-Recipient\". \
             Applications that must relay get a dedicated connector scoped to their RemoteIPRanges."
        }
        (F::OpenRelay, S::Postfix) => {
            "Postfix main.cf: smtpd_relay_restrictions = permit_mynetworks, \
             permit_sasl_authenticated, reject_unauth_destination; set mynetworks to \
             127.0.0.0/8 [::1]/128 plus only your own hosts (never a whole provider range), \
             then `postfix reload`. Check with `postconf smtpd_relay_restrictions mynetworks`."
        }
        (F::PossibleRelay, S::Postfix) => {
            "Postfix: keep reject_unauth_destination in smtpd_relay_restrictions and set \
             allow_percent_hack = no, swap_bangpath = no and resolve_dequoted_address = yes, so \
             user%domain, domain!user and quoted addresses cannot route mail out; `postfix reload`."
        }
        (F::OpenRelay | F::PossibleRelay, S::Exim) => {
            "Exim: relay only for hostlist relay_from_hosts (127.0.0.1 : ::1 plus your own \
             hosts; Debian: dc_relay_nets in update-exim4.conf.conf) and authenticated clients: \
             in acl_smtp_rcpt keep `accept hosts = +relay_from_hosts` and \
             `accept authenticated = *` before `require domains = +local_domains : +relay_to_domains` \
             (\"relay not permitted\"). Do not accept percent_hack_domains = *."
        }
        (F::OpenRelay | F::PossibleRelay, S::Sendmail) => {
            "Sendmail: in /etc/mail/access grant RELAY only to your own networks \
             (`Connect:192.0.2 RELAY`), remove broad RELAY entries, and drop \
             FEATURE(`promiscuous_relay'), FEATURE(`relay_based_on_MX') and \
             FEATURE(`loose_relay_check') from sendmail.mc; rebuild with \
             `makemap hash /etc/mail/access < /etc/mail/access` and restart."
        }
        (F::OpenRelay | F::PossibleRelay, S::Opensmtpd) => {
            "OpenSMTPD smtpd.conf: relay only with `match from local for any action \"relay\"` \
             and `match auth from any for any action \"relay\"`; remove any \
             `match from any for any` rule; `smtpctl reload` (or restart smtpd)."
        }
        (F::OpenRelay | F::PossibleRelay, S::Qmail) => {
            "qmail: control/rcpthosts must list only your own domains, and RELAYCLIENT may be \
             set in /etc/tcp.smtp only for your own networks (then `qmailctl cdb`)."
        }
        (F::OpenRelay | F::PossibleRelay, S::Mailenable) => {
            "MailEnable Administrator → Servers → localhost → Connectors → SMTP → Properties → \
             Relay: allow relay only for authenticated senders and privileged IP ranges; clear \
             \"Allow relay for local sender addresses\"."
        }
        (F::OpenRelay | F::PossibleRelay, S::Hmailserver) => {
            "hMailServer Administrator → Settings → Advanced → IP Ranges → Internet: clear \
             \"External to External\" under Allow deliveries from, and check SMTP authentication \
             required for \"External to External\"."
        }
        (F::OpenRelay | F::PossibleRelay, S::Courier) => {
            "Courier: in /etc/courier/smtpaccess/ give RELAYCLIENT only to your own networks \
             (`192.0.2\tallow,RELAYCLIENT`), then run makesmtpaccess."
        }
        (F::OpenRelay | F::PossibleRelay, S::Unknown) => {
            "Relay only for your own networks and for authenticated users: refuse RCPT to \
             domains the server is not responsible for from everyone else (\"relay access denied\")."
        }
        // --- relay after a failed AUTH ----------------------------------------------
        (F::RelayAfterFailedAuth, S::Mailenable) => {
            "The server relays after a failed AUTH: update MailEnable, and until then clear \
             \"Allow relay for authenticated senders\" under SMTP → Properties → Relay and \
             relay only for privileged IP ranges."
        }
        (F::RelayAfterFailedAuth, S::IisSmtp | S::Exchange) => {
            "The server relays after a failed AUTH: install the current updates, and until then \
             relay only for the listed computers (Relay restrictions → \"Only the list below\") \
             or, on Exchange, remove Ms-Exch-SMTP-Accept-Any-Recipient from the connector."
        }
        (F::RelayAfterFailedAuth, _) => {
            "The server treats a failed AUTH as authenticated: update the software (this is a \
             known class of bug), and until then let only your own networks relay."
        }
        // --- passwords in the clear --------------------------------------------------
        (F::PlaintextAuth, S::IisSmtp) => {
            "IIS: install a certificate (Access tab → Certificate…), then Access tab → \
             Authentication… → Basic authentication → check \"Requires TLS encryption\"; or \
             offer only Integrated Windows Authentication."
        }
        (F::PlaintextAuth, S::Exchange) => {
            "Exchange: Set-ReceiveConnector \"<server>\\<connector>\" -AuthMechanism \
             Tls,BasicAuth,BasicAuthRequireTLS,Integrated so Basic (LOGIN) is offered only after STARTTLS."
        }
        (F::PlaintextAuth, S::Postfix) => {
            "Postfix main.cf: smtpd_tls_auth_only = yes (with a certificate in smtpd_tls_cert_file \
             and smtpd_tls_key_file), then `postfix reload`."
        }
        (F::PlaintextAuth, S::Exim) => {
            "Exim: auth_advertise_hosts = ${if eq{$tls_in_cipher}{}{}{*}} so AUTH is offered \
             only after STARTTLS (needs tls_certificate and tls_privatekey)."
        }
        (F::PlaintextAuth, S::Sendmail) => {
            "Sendmail .mc: define(`confAUTH_OPTIONS', `A p') so PLAIN and LOGIN are offered only \
             over TLS; rebuild sendmail.cf and restart."
        }
        (F::PlaintextAuth, S::Opensmtpd) => {
            "OpenSMTPD: offer AUTH only on TLS listeners: `listen on <if> port submission \
             tls-require pki <name> auth` (or `smtps`), and no `auth` on plaintext listeners."
        }
        (F::PlaintextAuth, _) => {
            "Offer AUTH PLAIN and LOGIN only after STARTTLS (or on implicit TLS, port 465): \
             base64 is not encryption, anyone on the path can read the password."
        }
        // --- no TLS at all ----------------------------------------------------------
        (F::NoTls, S::IisSmtp) => {
            "IIS: Access tab → Certificate… installs a certificate; the SMTP service then offers STARTTLS."
        }
        (F::NoTls, S::Exchange) => {
            "Exchange: assign a certificate to SMTP (Enable-ExchangeCertificate -Services SMTP) \
             and keep Tls in the connector's AuthMechanism."
        }
        (F::NoTls, S::Postfix) => {
            "Postfix main.cf: smtpd_tls_cert_file, smtpd_tls_key_file and \
             smtpd_tls_security_level = may (encrypt on submission), then `postfix reload`."
        }
        (F::NoTls, S::Exim) => {
            "Exim: tls_certificate, tls_privatekey and tls_advertise_hosts = * (Debian: MAIN_TLS_ENABLE = yes)."
        }
        (F::NoTls, S::Sendmail) => {
            "Sendmail .mc: define(`confSERVER_CERT', …) and define(`confSERVER_KEY', …), rebuild and restart."
        }
        (F::NoTls, S::Opensmtpd) => {
            "OpenSMTPD: `pki <name> cert \"…\"`, `pki <name> key \"…\"` and `listen on <if> tls pki <name>`."
        }
        (F::NoTls, _) => "Install a certificate and offer STARTTLS (RFC 3207).",
        // --- broken TLS -------------------------------------------------------------
        (F::TlsFailed | F::TlsUntested, S::Postfix) => {
            "Postfix: check smtpd_tls_cert_file / smtpd_tls_key_file and the TLS errors in the \
             mail log; a server that demands STARTTLS \
             must be able to complete it."
        }
        (F::TlsFailed | F::TlsUntested, _) => {
            "Fix the server's TLS setup (certificate, key, protocol versions): it offers or \
             demands STARTTLS but the handshake fails, so clients fall back to plaintext or \
             cannot send at all."
        }
        (F::StartTlsInjection, _) => {
            "The server (or something between it and relayscan) sent data after \"220 Ready to \
             start TLS\" and before the handshake. relayscan discarded it; check for a broken \
             middlebox or proxy, and update the MTA."
        }
        // --- certificate ------------------------------------------------------------
        (F::CertificateExpired, _) => {
            "Renew the server certificate (and reload the MTA): many senders refuse or warn on an expired one."
        }
        (F::SelfSignedCertificate, _) => {
            "Use a certificate from a CA the senders trust (e.g. ACME/Let's Encrypt) if clients \
             or MTA-STS/DANE policies verify it; a self-signed one only protects against passive sniffing."
        }
        // --- authenticated relay ----------------------------------------------------
        (F::AuthenticatedRelayRefused, S::IisSmtp) => {
            "IIS: Access tab → Relay… → check \"Allow all computers which successfully \
             authenticate to relay, regardless of the list above\"."
        }
        (F::AuthenticatedRelayRefused, S::Exchange) => {
            "Exchange: the connector must grant Ms-Exch-SMTP-Accept-Any-Recipient to \
             authenticated users (PermissionGroups ExchangeUsers); clients should use the \
             Client Frontend connector on port 587."
        }
        (F::AuthenticatedRelayRefused, S::Postfix) => {
            "Postfix: put permit_sasl_authenticated before reject_unauth_destination in \
             smtpd_relay_restrictions (on the port your users submit to)."
        }
        (F::AuthenticatedRelayRefused, _) => {
            "Let authenticated users relay: they authenticated successfully but were still \
             refused a foreign recipient."
        }
        (F::AuthFailed, _) => {
            "AUTH with the given credentials failed: check the user name (some servers want \
             user@domain or DOMAIN\\user) and password, or the account's right to send."
        }
        (F::WindowsIntegratedAuth, _) => return None,
    };
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_has_advice_for_every_product() {
        let products = [
            Software::Postfix,
            Software::Exim,
            Software::Sendmail,
            Software::Opensmtpd,
            Software::IisSmtp,
            Software::Exchange,
            Software::Qmail,
            Software::Mailenable,
            Software::Hmailserver,
            Software::Courier,
            Software::Unknown,
        ];
        for finding in FindingId::ALL {
            for software in products {
                let advice = advice(finding, software);
                assert_eq!(
                    advice.is_some(),
                    finding != FindingId::WindowsIntegratedAuth,
                    "{finding:?} on {software:?}"
                );
            }
        }
    }

    #[test]
    fn an_open_relay_through_a_trick_gets_the_tricks_fix() {
        let postfix = trick_advice(Software::Postfix).unwrap();
        assert!(
            postfix.contains("allow_percent_hack = no") && postfix.contains("relay_recipient_maps")
        );
        assert_eq!(
            trick_advice(Software::Exim),
            advice(FindingId::PossibleRelay, Software::Exim)
        );
        assert!(trick_advice(Software::Unknown).is_some());
    }

    #[test]
    fn advice_speaks_each_products_language() {
        let iis = advice(FindingId::OpenRelay, Software::IisSmtp).unwrap();
        assert!(iis.contains("Only the list below") && iis.contains("Anonymous access"));
        assert!(advice(FindingId::OpenRelay, Software::Postfix)
            .unwrap()
            .contains("smtpd_relay_restrictions"));
        assert!(advice(FindingId::OpenRelay, Software::Postfix)
            .unwrap()
            .contains("mynetworks"));
        assert!(advice(FindingId::OpenRelay, Software::Exim)
            .unwrap()
            .contains("relay_from_hosts"));
        assert!(advice(FindingId::OpenRelay, Software::Sendmail)
            .unwrap()
            .contains("access"));
        assert!(advice(FindingId::OpenRelay, Software::Opensmtpd)
            .unwrap()
            .contains("match"));
        assert!(advice(FindingId::OpenRelay, Software::Exchange)
            .unwrap()
            .contains("receive connector"));
    }
}

#!/usr/bin/env bash
# A FreeRADIUS of the test's own on loopback (never the packaged service): a copy of
# Debian's raddb under DIR with Message-Authenticator required from every client, and
# the test's users. Runs in the foreground (-xx: every packet in DIR/radiusd.log; threads
# on, which TLS needs) until killed. With TLS_DIR (ca.pem, server.pem, server.key): also
# RadSec (RFC 6614) on TCP AUTH_PORT, a client certificate from that CA required.
# Usage: freeradius.sh DIR AUTH_PORT SECRET [TLS_DIR]
set -euo pipefail
dir=$1 port=$2 secret=$3 tls=${4:-}
rm -rf "$dir/raddb" && mkdir -p "$dir/log" "$dir/run"
cp -a /etc/freeradius/3.0 "$dir/raddb"
r=$dir/raddb
# Nothing of the package's own: no inner tunnel (port 18120), no EAP (needs certificates).
rm -f "$r/sites-enabled/inner-tunnel" "$r/sites-enabled/control-socket" "$r/mods-enabled/eap"
sed -i -e 's/^\(\s*\)\(user\|group\) = freerad/\1# \2 = freerad/' \
  -e "s|^logdir = .*|logdir = $dir/log|" -e "s|^run_dir = .*|run_dir = $dir/run|" \
  -e 's/^\(\s*\)reject_delay = .*/\1reject_delay = 0/' "$r/radiusd.conf"
# (A Reject comes at once: the tests ask with a one-second timeout.)
# Loopback only; the accounting listeners and IPv6 on ports of their own past AUTH_PORT.
site=$r/sites-available/default
sed -i -e '/^\s*eap {/,/^\s*}/d' -e '/^\s*eap\s*$/d' "$site"
sed -i -e 's/^\(\s*\)ipaddr = \*/\1ipaddr = 127.0.0.1/' -e 's/^\(\s*\)ipv6addr = ::\b.*/\1ipv6addr = ::1/' "$site"
# Message-Authenticator in every reply: FreeRADIUS before 3.2.5 adds it only to EAP
# replies; the box refuses a reply without it (BlastRADIUS, CVE-2024-3596).
sed -i -e 's/^post-auth {/&\n\tupdate reply {\n\t\t\&Message-Authenticator := 0x00\n\t}/' \
  -e 's/^\(\s*\)Post-Auth-Type REJECT {/&\n\1\tupdate reply {\n\1\t\t\&Message-Authenticator := 0x00\n\1\t}/' "$site"
# tech3 answers a challenge: its password gets an Access-Challenge (State, Reply-Message),
# the code 424242 with that State an Accept; any other answer a Reject.
cat >"$dir/challenge.unlang" <<'UNLANG'
	if (&User-Name == "tech3") {
		if (&State) {
			if ((&State == 0x70627831) && (&User-Password == "424242")) {
				update control {
					&Auth-Type := Accept
				}
				update reply {
					&Class := "pbx-admin"
				}
			}
			else {
				reject
			}
		}
		elsif (&User-Password == "token pass 3") {
			update reply {
				&State := 0x70627831
				&Reply-Message := "Enter the code from your token"
				&Message-Authenticator := 0x00
			}
			update control {
				&Response-Packet-Type := Access-Challenge
			}
			handled
		}
		else {
			reject
		}
	}
UNLANG
sed -i "/^authorize {/r $dir/challenge.unlang" "$site"
n=0
while grep -q '^\s*port = 0' "$site"; do
  sed -i "0,/^\(\s*\)port = 0/s//\1port = $((port + n))/" "$site"
  n=$((n + 1))
done
cat >"$r/clients.conf" <<CLIENTS
client test {
	ipaddr = 127.0.0.0/8
	secret = "$secret"
	require_message_authenticator = yes
}
client test6 {
	ipv6addr = ::1
	secret = "$secret"
	require_message_authenticator = yes
}
CLIENTS
users=$r/mods-config/files/authorize
{
  printf 'tech1 Cleartext-Password := "admin pass 1"\n\tClass = "pbx-admin",\n\tReply-Message = "Welcome, tech1"\n\n'
  printf 'tech2 Cleartext-Password := "user pass 2"\n\tFilter-Id = "pbx-user"\n\n'
  printf 'tech4 Cleartext-Password := "plain pass 4"\n\n'
  # A directory "admin": never asked, the box's own admin is local.
  printf 'admin Cleartext-Password := "directory admin 5"\n\tClass = "pbx-admin"\n\n'
  cat "$users"
} >"$users.new"
mv "$users.new" "$users"
if [ -n "$tls" ]; then
  cat >"$r/sites-enabled/radsec" <<RADSEC
listen {
	ipaddr = 127.0.0.1
	port = $port
	type = auth
	proto = tcp
	virtual_server = default
	clients = radsec
	tls {
		private_key_file = $tls/server.key
		certificate_file = $tls/server.pem
		ca_file = $tls/ca.pem
		fragment_size = 8192
		cipher_list = "DEFAULT"
		tls_min_version = "1.2"
		tls_max_version = "1.3"
		require_client_cert = yes
		verify {
		}
	}
}
clients radsec {
	client loopback {
		ipaddr = 127.0.0.1
		proto = tls
		secret = radsec
		require_message_authenticator = yes
	}
}
RADSEC
fi
exec freeradius -f -xx -l stdout -d "$r" >"$dir/radiusd.log" 2>&1

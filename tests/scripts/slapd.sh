#!/usr/bin/env bash
# An OpenLDAP slapd of the test's own on loopback (never the packaged service): a config
# file and an mdb database under DIR, LDAPS on LDAPS_PORT and plain LDAP (for StartTLS)
# on LDAP_PORT, both on 127.0.0.1, the certificate from TLS_DIR (ca.pem, server.pem,
# server.key). Entries of dc=pbx,dc=test: the service account cn=pbx,ou=services
# ("service pass 0"), uid=ldap1 ("ldap admin 1", in cn=pbx-admins), uid=ldap2 ("ldap user
# 2", in no group), uid=ldap3 ("ldap user 3", in cn=pbx-users), uid=ldap4 ("ldap admin 4":
# no group lists it, its own memberOf names cn=pbx-admins, as Active Directory, lldap and
# kanidm give it; the memberof overlay defines the attribute), uid=admin ("ldap admin 5",
# in cn=pbx-admins: never asked, the box's admin is local). Runs in the foreground until
# killed. Usage: slapd.sh DIR LDAPS_PORT LDAP_PORT TLS_DIR
set -euo pipefail
dir=$1 ldaps=$2 ldap=$3 tls=$4
rm -rf "$dir/db" && mkdir -p "$dir/db"
cat >"$dir/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile $dir/slapd.pid
TLSCACertificateFile $tls/ca.pem
TLSCertificateFile $tls/server.pem
TLSCertificateKeyFile $tls/server.key
database mdb
suffix "dc=pbx,dc=test"
directory $dir/db
overlay memberof
access to attrs=userPassword
	by self read
	by anonymous auth
	by * none
access to *
	by dn.exact="cn=pbx,ou=services,dc=pbx,dc=test" read
	by self read
	by * none
CONF
base=dc=pbx,dc=test
person() { # uid password
  printf 'dn: uid=%s,ou=people,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\nuserPassword: %s\n\n' \
    "$1" "$base" "$1" "$1" "$1" "$2"
}
{
  printf 'dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: pbx\no: PBX test\n\n' "$base"
  for ou in people groups services; do
    printf 'dn: ou=%s,%s\nobjectClass: organizationalUnit\nou: %s\n\n' "$ou" "$base" "$ou"
  done
  printf 'dn: cn=pbx,ou=services,%s\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: pbx\nuserPassword: service pass 0\n\n' "$base"
  person ldap1 "ldap admin 1"
  person ldap2 "ldap user 2"
  person ldap3 "ldap user 3"
  person admin "ldap admin 5"
  printf 'dn: uid=ldap4,ou=people,%s\nobjectClass: inetOrgPerson\nuid: ldap4\ncn: ldap4\nsn: ldap4\nuserPassword: ldap admin 4\nmemberOf: cn=pbx-admins,ou=groups,%s\n\n' "$base" "$base"
  printf 'dn: cn=pbx-admins,ou=groups,%s\nobjectClass: groupOfNames\ncn: pbx-admins\nmember: uid=ldap1,ou=people,%s\nmember: uid=admin,ou=people,%s\n\n' "$base" "$base" "$base"
  printf 'dn: cn=pbx-users,ou=groups,%s\nobjectClass: groupOfNames\ncn: pbx-users\nmember: uid=ldap3,ou=people,%s\n\n' "$base" "$base"
} >"$dir/data.ldif"
slapadd -f "$dir/slapd.conf" -l "$dir/data.ldif" >"$dir/slapadd.log" 2>&1
exec slapd -f "$dir/slapd.conf" -h "ldaps://127.0.0.1:$ldaps/ ldap://127.0.0.1:$ldap/" -d 256 >"$dir/slapd.log" 2>&1

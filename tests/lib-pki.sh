# shellcheck shell=bash
# make_pki DIR: a small PKI for TLS tests and benchmarks (openvpn): an EC CA
# (ca.crt, ca.key) and a server and a client certificate signed by it
# (server.crt/.key with serverAuth, client.crt/.key with clientAuth), valid
# two days.  Output of openssl on stdout/stderr; status 0 if all were made.
make_pki() {
	(
		local n eku
		cd "$1" || exit 1
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout ca.key -out ca.crt -days 2 -subj /CN=kup-test-ca || exit 1
		for n in server client; do
			eku=clientAuth
			[ $n = server ] && eku=serverAuth
			printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=%s\n' \
				$eku > $n.ext
			openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
				-keyout $n.key -out $n.csr -subj /CN=$n &&
			openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
				-out $n.crt -days 2 -extfile $n.ext || exit 1
		done
	)
}

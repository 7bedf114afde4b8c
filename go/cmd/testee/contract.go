// What `testee --help` prints: a faithful summary of spec/testee.md.

package main

const contract = `testee: the Go connector's side of spec/testee.md (the contract every testee follows)

usage: testee ROLE [--option value | --flag]...   (the namespace comes from IMPULSE_RING_NS)

  publisher  [--channel C] [--key K] [--count N] [--lossy] [--capacity B] [--wait-subscribers K]
             [--wait-go] [--raw] [--hold-ms T] [--probe-too-large] [--probe-invalid-schema]
             prints: ready, published N (probe <Name>: <message> for the probes)
  subscriber [--channel C] [--key K] [--count N] [--expect-closed] [--stall-ms T] [--schema other]
             [--probe-invalid-schema]
             prints: subscribed, closed, received N, missed M received N
  provider   [--function F] [--key K] [--fail-on X] [--sleep-ms T]
             prints: ready; serves until stdin closes
  caller     [--function F] [--key K] [--count N] [--in-flight C] [--threads T] [--timeout-ms T]
             [--base A] [--keep-going]
             prints: calling, ok N (ok S failed F with --keep-going)

exit status: 0 done; 2 verification failed (mismatch ...); 10 + code after a connector error
(error <Name>: <message>); 64 usage error (on stderr).
`

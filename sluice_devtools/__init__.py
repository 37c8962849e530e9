"""Development tools shipped beside the gateway, never imported by it: the fake upstream, the
server thread the tests and `sluice demo` use, and the demo itself. Only the `sluice demo` and
`sluice fake-upstream` commands reach in here, from their run functions."""

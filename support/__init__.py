"""What the tests and the benchmarks share and the product never imports: servers they start
on loopback and the wait for them to answer."""

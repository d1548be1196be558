-- many-idle.ts --wrk-windows: the tail wrk's own summary leaves out (microseconds).
done = function(summary, latency, requests)
  io.write(string.format("window p999_us %d max_us %d\n", latency:percentile(99.9), latency.max))
end

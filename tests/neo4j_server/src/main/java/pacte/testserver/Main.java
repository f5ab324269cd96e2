package pacte.testserver;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicBoolean;

import org.neo4j.configuration.GraphDatabaseInternalSettings;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.BoltConnectorInternalSettings;
import org.neo4j.configuration.connectors.ConnectorPortRegister;
import org.neo4j.configuration.connectors.ConnectorType;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.internal.helpers.HostnamePort;
import org.neo4j.kernel.internal.GraphDatabaseAPI;

/**
 * A throwaway Neo4j Community server for pacte's tests, embedded in one JVM.
 *
 * <p>Usage: {@code java [-Dpacte.pagecache=<bytes>] [-Dpacte.txmemory=<bytes>] -jar
 * neo4j-test-server.jar <port|0> <fresh directory>}. Bolt listens on
 * 127.0.0.1 only, without auth or TLS. Port 0 lets the kernel choose, so concurrent test sessions
 * never race for a port. Prints exactly one line on stdout, {@code READY <port>}, once Bolt accepts
 * connections; everything else goes to stderr or to the log files under the directory. The server
 * stops when its standard input closes, which also happens when the parent test process dies, so
 * no orphan survives a killed pytest.
 */
public final class Main {
    // Small on purpose: the test graphs are tiny and CI machines have 2 cores and little memory.
    // A benchmark loading a large graph raises them with -Dpacte.pagecache=<bytes> and
    // -Dpacte.txmemory=<bytes> (see tests/neo4j_fixture.py).
    private static final long PAGE_CACHE_BYTES =
            Long.getLong("pacte.pagecache", 32L * 1024 * 1024);
    private static final long TX_MEMORY_BYTES =
            Long.getLong("pacte.txmemory", 256L * 1024 * 1024);
    private static final long LOG_ROTATION_BYTES = 16L * 1024 * 1024;
    private static final int READY_TIMEOUT_MS = 60_000;
    private static final Duration SHUTDOWN_WAIT = Duration.ofMillis(500);

    private Main() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: neo4j-test-server <port|0> <fresh directory>");
            System.exit(2);
        }
        int requestedPort = Integer.parseInt(args[0]);
        Path home = Path.of(args[1]).toAbsolutePath();
        Files.createDirectories(home);

        // Keep stdout for the READY line alone: Neo4j's user log would otherwise go there.
        PrintStream ready = System.out;
        System.setOut(System.err);

        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(home)
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", requestedPort))
                .setConfig(BoltConnector.advertised_address, new SocketAddress("127.0.0.1", requestedPort))
                .setConfig(BoltConnector.encryption_level, BoltConnector.EncryptionLevel.DISABLED)
                .setConfig(GraphDatabaseSettings.auth_enabled, false)
                .setConfig(GraphDatabaseSettings.pagecache_memory, PAGE_CACHE_BYTES)
                .setConfig(GraphDatabaseSettings.memory_transaction_global_max_size, TX_MEMORY_BYTES)
                // A fresh directory per run: no need to reserve disk for logs or store files.
                .setConfig(GraphDatabaseSettings.preallocate_logical_logs, false)
                .setConfig(GraphDatabaseSettings.preallocate_store_files, false)
                .setConfig(GraphDatabaseSettings.logical_log_rotation_threshold, LOG_ROTATION_BYTES)
                .setConfig(GraphDatabaseSettings.keep_logical_logs, "false")
                .setConfig(GraphDatabaseSettings.udc_enabled, false)
                // Bolt's shutdown waits twice for 5 s of quiet by default: 10 s per test session
                // spent waiting on nothing, since the tests have closed their drivers by then.
                .setConfig(BoltConnectorInternalSettings.thread_pool_shutdown_wait_time, SHUTDOWN_WAIT)
                .setConfig(BoltConnectorInternalSettings.connection_shutdown_wait_time, SHUTDOWN_WAIT)
                .setConfig(GraphDatabaseInternalSettings.netty_server_shutdown_quiet_period, 0)
                .setConfig(GraphDatabaseInternalSettings.netty_server_shutdown_timeout, SHUTDOWN_WAIT)
                .build();

        AtomicBoolean stopped = new AtomicBoolean(false);
        Runnable stop = () -> {
            if (stopped.compareAndSet(false, true)) {
                dbms.shutdown();
            }
        };
        // SIGTERM / SIGINT also shut down cleanly (the store is left consistent).
        Runtime.getRuntime().addShutdownHook(new Thread(stop, "neo4j-test-server-shutdown"));

        int port;
        try {
            GraphDatabaseService db = dbms.database(GraphDatabaseSettings.DEFAULT_DATABASE_NAME);
            port = requestedPort != 0 ? requestedPort : boundPort(db);
            awaitBolt(port);
        } catch (RuntimeException e) {
            // Neo4j's non-daemon threads would keep a half-started JVM alive: exit explicitly.
            e.printStackTrace();
            stop.run();
            System.exit(1);
            return;
        }
        ready.println("READY " + port);
        ready.flush();

        waitForEndOfInput(System.in);
        System.err.println("neo4j-test-server: standard input closed, shutting down");
        stop.run();
        System.exit(0);
    }

    /** The port the kernel chose for Bolt when asked for port 0. */
    private static int boundPort(GraphDatabaseService db) {
        // ConnectorPortRegister is internal API, but it is the only way to learn an ephemeral
        // port without parsing logs; it has been stable across 4.x and 5.x.
        ConnectorPortRegister ports = ((GraphDatabaseAPI) db).getDependencyResolver()
                .resolveDependency(ConnectorPortRegister.class);
        HostnamePort address = ports.getLocalAddress(ConnectorType.BOLT);
        if (address == null) {
            throw new IllegalStateException("Bolt connector did not register a port");
        }
        return address.getPort();
    }

    /** Returns once a TCP connection to Bolt succeeds: "started" is not the same as "accepting". */
    private static void awaitBolt(int port) throws InterruptedException {
        long deadline = System.currentTimeMillis() + READY_TIMEOUT_MS;
        while (true) {
            try (Socket socket = new Socket()) {
                socket.connect(new InetSocketAddress("127.0.0.1", port), 1_000);
                return;
            } catch (IOException e) {
                if (System.currentTimeMillis() > deadline) {
                    throw new IllegalStateException("Bolt did not accept connections on " + port, e);
                }
                Thread.sleep(50);
            }
        }
    }

    private static void waitForEndOfInput(InputStream in) {
        byte[] buffer = new byte[256];
        try {
            while (in.read(buffer) >= 0) {
                // Anything written to stdin is ignored; only its end matters.
            }
        } catch (IOException e) {
            // A broken pipe means the parent is gone: stop as on a clean close.
            System.err.println("neo4j-test-server: stdin failed (" + e.getMessage() + ")");
        }
    }
}

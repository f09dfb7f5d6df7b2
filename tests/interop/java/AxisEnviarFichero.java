import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;

import javax.activation.DataHandler;
import javax.activation.DataSource;
import javax.xml.rpc.ParameterMode;
import javax.xml.namespace.QName;

import org.apache.axis.client.Call;
import org.apache.axis.encoding.XMLType;

/**
 * Pushes one file with enviarFichero, the way an Axis 1.4 CPCSCC client does.
 *
 * Usage: AxisEnviarFichero URL CONCENTRADOR_ID NOMBRE CHECKSUM FILE http10|chunked
 * Prints {@code codigo=N} (the server's answer) on stdout.
 */
public final class AxisEnviarFichero {
    /** Streams the file with the bzip2 media type, so the DIME record is typed like CPCSCC's. */
    private static final class Bzip2FileSource implements DataSource {
        private final File file;

        Bzip2FileSource(File file) { this.file = file; }

        public String getContentType() { return "application/x-bzip2"; }
        public InputStream getInputStream() throws IOException { return new FileInputStream(file); }
        public String getName() { return file.getName(); }
        public OutputStream getOutputStream() throws IOException {
            throw new IOException("read-only data source");
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 6) {
            System.err.println(
                "usage: AxisEnviarFichero URL ID NOMBRE CHECKSUM FILE http10|chunked");
            System.exit(2);
        }
        Call call = CpcsccCall.create(args[0], "enviarFichero", args[1], args[5]);
        call.addParameter(new QName(CpcsccCall.NS, "Fichero"), Fichero.XML_TYPE,
                Fichero.class, ParameterMode.IN);
        call.setReturnType(XMLType.XSD_INT);
        call.addAttachmentPart(new DataHandler(new Bzip2FileSource(new File(args[4]))));
        Object codigo = call.invoke(new Object[] {new Fichero(args[2], args[3])});
        System.out.println("codigo=" + codigo);
    }
}

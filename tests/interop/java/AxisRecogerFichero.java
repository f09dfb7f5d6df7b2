import java.util.Iterator;

import javax.xml.namespace.QName;
import javax.xml.rpc.ParameterMode;
import javax.xml.soap.AttachmentPart;

import org.apache.axis.Message;
import org.apache.axis.client.Call;
import org.apache.axis.encoding.XMLType;

/**
 * Fetches one file with recogerFichero, the way an Axis 1.4 CPCSCC client does,
 * and reports what Axis made of the DIME response.
 *
 * Usage: AxisRecogerFichero URL CONCENTRADOR_ID NOMBRE_FICHERO http10|chunked
 * Prints {@code nombre=}, {@code checksum=}, {@code attachments=}, then
 * {@code length=} and {@code md5=} of each attachment, on stdout.
 */
public final class AxisRecogerFichero {
    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: AxisRecogerFichero URL ID NOMBRE_FICHERO http10|chunked");
            System.exit(2);
        }
        Call call = CpcsccCall.create(args[0], "recogerFichero", args[1], args[3]);
        call.addParameter(new QName(CpcsccCall.NS, "nombreFichero"), XMLType.XSD_STRING,
                String.class, ParameterMode.IN);
        call.setReturnType(Fichero.XML_TYPE, Fichero.class);
        Fichero fichero = (Fichero) call.invoke(new Object[] {args[2]});
        System.out.println("nombre=" + fichero.getNombre());
        System.out.println("checksum=" + fichero.getChecksum());

        Message response = call.getResponseMessage();
        System.out.println("attachments=" + response.countAttachments());
        Iterator<?> parts = response.getAttachments();
        while (parts.hasNext()) {
            String[] digest = CpcsccCall.digest((AttachmentPart) parts.next());
            System.out.println("length=" + digest[0]);
            System.out.println("md5=" + digest[1]);
        }
    }

}

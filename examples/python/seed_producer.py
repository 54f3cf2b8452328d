from rpcservices import client

myClient = client.XmlRpcClient("http://localhost:8000")
inStack = myClient.stack.createStack("in")
for item in range(10):
    inStack.push(item)
    print("push item %s" % item)
